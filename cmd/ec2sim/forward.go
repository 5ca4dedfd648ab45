package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// forwardFlag collects -ssm-forward INSTANCE_ID:PORT=HOST:PORT values: the
// address a session's agent reaches when it connects to PORT on the
// instance, standing in for the instance's own network.
type forwardFlag struct{ m *map[string]string }

func (f forwardFlag) String() string { return "" }

func (f forwardFlag) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want INSTANCE_ID:PORT=HOST:PORT, e.g. i-0a0b0c0d0e0f00001:22=127.0.0.1:2222")
	}
	id, port, ok := strings.Cut(from, ":")
	if !ok || !strings.HasPrefix(id, "i-") {
		return fmt.Errorf("%q: want an instance ID and a port before the =, e.g. i-0a0b0c0d0e0f00001:22", from)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: the instance port must be 1 to 65535", from)
	}
	if _, _, err := net.SplitHostPort(to); err != nil {
		return fmt.Errorf("%q: want HOST:PORT after the =: %w", to, err)
	}
	if *f.m == nil {
		*f.m = map[string]string{}
	}
	if _, dup := (*f.m)[from]; dup {
		return fmt.Errorf("%s is forwarded twice", from)
	}
	(*f.m)[from] = to
	return nil
}

// forwardDialer is Options.Dial for the -ssm-forward table: connections to
// an instance port not in it are refused.
func forwardDialer(table map[string]string) func(ctx context.Context, region, instanceID string, port int) (net.Conn, error) {
	if len(table) == 0 {
		return nil
	}
	return func(ctx context.Context, _, instanceID string, port int) (net.Conn, error) {
		to, ok := table[instanceID+":"+strconv.Itoa(port)]
		if !ok {
			return nil, fmt.Errorf("no -ssm-forward for %s:%d", instanceID, port)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", to)
	}
}
