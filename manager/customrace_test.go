package manager

import (
	"errors"
	"sync"
	"testing"
)

// TestCustomCallRacesKill: calls on a custom object while the server
// kills it (shutdown) end with ErrNoSuchObject or ErrConnLost, and the
// object's dead flag is read under its lock (run with -race).
func TestCustomCallRacesKill(t *testing.T) {
	for range 5 {
		name := t.Name()
		ms := newMemServer(t, name, true)
		m := ms.client(t, name)
		ctx := testCtx(t)
		o, err := Create(ctx, m, counterType.Name())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		started := make(chan struct{}, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					_, err := Call[int](ctx, o, "Add", 0)
					if i == 0 {
						started <- struct{}{}
					}
					if err != nil {
						if !errors.Is(err, ErrNoSuchObject) && !errors.Is(err, ErrConnLost) {
							t.Errorf("Call during shutdown: %v", err)
						}
						return
					}
				}
			}()
		}
		for range 4 {
			<-started
		}
		ms.s.close()
		wg.Wait()
	}
}
