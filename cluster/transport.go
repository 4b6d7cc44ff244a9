package cluster

import (
	"context"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/optoutd/optoutd/security"
)

// streamLayer is hashicorp/raft's StreamLayer over the mux.
type streamLayer struct {
	*chanListener
	nw        Network
	tls       *security.Reloader
	advertise net.Addr
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialMux(ctx, s.nw, s.tls, string(address), muxRaft)
}

// Addr is the address other nodes reach this one at.
func (s *streamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.chanListener.Addr()
}
