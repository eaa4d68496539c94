package dbconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
)

func TestLostConnection(t *testing.T) {
	lost := []error{client.ErrNotConnected, io.EOF, fmt.Errorf("x: %w", io.ErrUnexpectedEOF), errors.New("connection is shut down")}
	for _, err := range lost {
		if !lostConnection(err) {
			t.Errorf("lostConnection(%v) = false", err)
		}
	}
	for _, err := range []error{nil, errors.New("constraint violation"), context.DeadlineExceeded} {
		if lostConnection(err) {
			t.Errorf("lostConnection(%v) = true", err)
		}
	}
}

func TestRetry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var agains []bool
	err := Retry(ctx, func(again bool) error {
		agains = append(agains, again)
		if len(agains) < 3 {
			return &LostError{Err: io.EOF}
		}
		return nil
	})
	if err != nil || fmt.Sprint(agains) != "[false true true]" {
		t.Errorf("Retry = %v after runs %v; want nil after [false true true]", err, agains)
	}
	other := errors.New("network exists")
	runs := 0
	if err := Retry(ctx, func(bool) error { runs++; return other }); !errors.Is(err, other) || runs != 1 {
		t.Errorf("Retry on a plain error = %v after %d runs; want it once", err, runs)
	}
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if err := Retry(short, func(bool) error { return &LostError{Err: io.EOF} }); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Retry past its deadline = %v; want ErrConnectionLost", err)
	}
}

func TestAsLost(t *testing.T) {
	if err := AsLost(fmt.Errorf("watch: monitor: %w", client.ErrNotConnected)); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("AsLost(not connected) = %v; want ErrConnectionLost", err)
	}
	plain := errors.New("bad model")
	if err := AsLost(plain); err != plain {
		t.Errorf("AsLost(plain) = %v; want it unchanged", err)
	}
	if AsLost(nil) != nil {
		t.Error("AsLost(nil) != nil")
	}
}
