package logs

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// follow reads the file at c.off to its end, then, when another file has
// taken the path, what is left of the old one, the rotated backup if it is
// a file never seen, and the new file from its beginning.
//
// The old file is read through the descriptor held since the last poll, so
// one rotation between polls loses nothing; after two, the backup
// (path + ".1") is a file this counter never opened and is read whole, so
// nothing is lost either; after three or more, the files in between were
// already deleted by the writer and their lines are never counted.
func (c *Counter) follow() error {
	if c.f == nil {
		f, id, _, err := openFile(c.path)
		if notExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		c.f, c.id, c.off = f, id, 0 // appeared after the counter started
	}
	if err := c.drain(); err != nil {
		return err
	}
	fi, err := os.Stat(c.path)
	if notExist(err) {
		return nil // removed; it may come back
	}
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if idOf(fi) == c.id {
		return nil
	}
	return c.switchFile()
}

// switchFile moves from the file held to the one now at the path.
func (c *Counter) switchFile() error {
	// The writer has moved on: whatever it wrote to the old file is there.
	if err := c.drain(); err != nil {
		return err
	}
	next, nextID, _, err := openFile(c.path)
	if notExist(err) {
		return nil // gone again between stat and open; next poll
	}
	if err != nil {
		return fmt.Errorf("open after rotation: %w", err)
	}
	if nextID == c.id {
		next.Close()
		return nil
	}
	if err := c.readBetween(c.id, nextID); err != nil {
		next.Close()
		return err
	}
	c.f.Close()
	c.f, c.id, c.off = next, nextID, 0
	c.rotations++
	return c.drain()
}

// readBetween reads the whole backup when it is neither the old file nor
// the new one: a file created and rotated away between two polls.
func (c *Counter) readBetween(old, next fileID) error {
	f, id, _, err := openFile(c.path + ".1")
	if notExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open rotated backup: %w", err)
	}
	defer f.Close()
	if id == old || id == next {
		return nil
	}
	var off int64
	if err := c.readTo(f, &off, -1); err != nil {
		return fmt.Errorf("rotated backup: %w", err)
	}
	c.rotations++
	return nil
}

// drain reads the held file from c.off up to its current size. A file
// shorter than c.off was truncated: an unfinished line is counted as ended
// and reading restarts at 0.
func (c *Counter) drain() error {
	fi, err := c.f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if fi.Size() < c.off {
		c.lines.flush()
		c.off = 0
		c.truncations++
	}
	return c.readTo(c.f, &c.off, fi.Size())
}

// readTo feeds f from *off until end (or EOF when end < 0), advancing *off.
// Stopping at a size taken beforehand bounds a poll when the writer is
// faster than the reader.
func (c *Counter) readTo(f *os.File, off *int64, end int64) error {
	if c.buf == nil {
		c.buf = make([]byte, readBuf)
	}
	for end < 0 || *off < end {
		b := c.buf
		if end >= 0 && end-*off < int64(len(b)) {
			b = b[:end-*off]
		}
		n, err := f.ReadAt(b, *off)
		c.lines.feed(b[:n])
		*off += int64(n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	return nil
}
