package trace

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovlmgr/ovlmgr/ovn/nbdb"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/dbops"
	"github.com/ovlmgr/ovlmgr/ovn/ovsdb/owner"
)

// ServiceRef is the ovlmgr service whose VIP a trace was sent to.
type ServiceRef struct {
	Name    string   `json:"name"`
	Network string   `json:"network"`
	VIP     string   `json:"vip"` // IP:PORT
	Proto   string   `json:"proto"`
	Backend string   `json:"backend,omitempty"` // the one traced (IP:PORT)
	Total   []string `json:"backends"`
}

// serviceAt finds our service with VIP ip:port for proto (tcp/udp), or nil.
func serviceAt(ctx context.Context, nb client.Client, vip, proto string) (*ServiceRef, error) {
	lbs, err := dbops.SelectRows(ctx, nb, []ovsdb.Condition{dbops.Owned(owner.KindService, nil)}, func(m *nbdb.LoadBalancer) []any { return []any{&m.UUID, &m.Name, &m.Vips, &m.Protocol, &m.ExternalIDs} })
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	for _, lb := range lbs {
		p := "tcp"
		if lb.Protocol != nil {
			p = string(*lb.Protocol)
		}
		backends, ok := lb.Vips[vip]
		if !ok || p != proto {
			continue
		}
		s := &ServiceRef{Name: lb.ExternalIDs[owner.KeyName], Network: lb.ExternalIDs[owner.KeyNetwork], VIP: vip, Proto: p}
		for _, b := range strings.Split(backends, ",") {
			if b = strings.TrimSpace(b); b != "" {
				s.Total = append(s.Total, b)
			}
		}
		sort.Strings(s.Total)
		return s, nil
	}
	return nil, nil
}
