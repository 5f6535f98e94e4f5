package store

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// genesisHash is the PrevHash of the first event.
var genesisHash = strings.Repeat("0", sha256.Size*2)

// record is an event as stored: every hashed field in the exact text the
// hash was computed over, so verification hashes the bytes on disk rather
// than a re-encoding of them.
type record struct {
	seq      int64
	time     string // RFC 3339 with nanoseconds, UTC
	app      string
	rollout  int64
	revision int64
	typ      string
	message  string
	data     string // compact JSON, or empty
	actor    string
	prevHash string
	hash     string
}

// chainHash is the hash an event with this content and predecessor must
// carry: hex(sha256(prevHash || fields)), where prevHash is the 64 hex
// characters of the previous hash and each field, in the order seq, time,
// app, rollout, revision, type, message, data, is written as a netstring —
// its length in bytes in decimal, ':', the bytes, ',' — with numbers in
// decimal and time as RFC 3339 with nanoseconds in UTC. Netstrings make the
// encoding unambiguous: no choice of field contents can make two different
// events encode alike. The actor (schema version 3) follows as a ninth
// netstring when it is not empty, so events written before it existed keep
// their hashes, and an actor cannot be added or removed without breaking
// the chain: a sequence of netstrings parses one way only, so eight fields
// never encode like nine.
func chainHash(prevHash string, r record) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	fields := []string{
		strconv.FormatInt(r.seq, 10),
		r.time,
		r.app,
		strconv.FormatInt(r.rollout, 10),
		strconv.FormatInt(r.revision, 10),
		r.typ,
		r.message,
		r.data,
	}
	if r.actor != "" {
		fields = append(fields, r.actor)
	}
	for _, field := range fields {
		h.Write([]byte(strconv.Itoa(len(field))))
		h.Write([]byte{':'})
		h.Write([]byte(field))
		h.Write([]byte{','})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func scanRecord(s rowScanner) (record, error) {
	var r record
	var data sql.NullString
	err := s.Scan(&r.seq, &r.time, &r.app, &r.rollout, &r.revision, &r.typ, &r.message, &data, &r.actor, &r.prevHash, &r.hash)
	r.data = data.String
	return r, err
}

func (r record) event() (Event, error) {
	t, err := parseTime(r.time)
	if err != nil {
		return Event{}, err
	}
	e := Event{
		Seq: r.seq, Time: t, App: r.app, Rollout: r.rollout, Revision: int(r.revision),
		Type: r.typ, Message: r.message, Actor: r.actor, PrevHash: r.prevHash, Hash: r.hash,
	}
	if r.data != "" {
		e.Data = json.RawMessage(r.data)
	}
	return e, nil
}
