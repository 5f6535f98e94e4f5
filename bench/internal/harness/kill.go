package harness

import "syscall"

// Kill9 kills lastgood with SIGKILL, as a crash would: only lastgood, not
// its process group, so that its replicas die by their own Pdeathsig (or
// are left behind, which a benchmark may want to see). It returns once
// lastgood has exited.
func (s *Server) Kill9() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}
