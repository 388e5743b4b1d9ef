package manager

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

func seedRequests() [][]byte {
	k := []byte("k")
	return [][]byte{
		appendRequest(nil, 1, opHello, 0, 0, 0, [][]byte{putU64(2000), {1}}),
		appendRequest(nil, 2, opCreate, 0, 0, 0, [][]byte{{kindDict}, []byte("string→int"), nil}),
		appendRequest(nil, 3, opDictSet, 7, 1, 0, [][]byte{k, putU64(1)}),
		appendRequest(nil, 4, opDictIncr, 7, 1, 0, [][]byte{k, {numSigned}, putU64(1)}),
		appendRequest(nil, 5, opQueueGet, 7, 1, 1000, [][]byte{{1}}),
		appendRequest(nil, 6, opCall, 7, 1, 0, [][]byte{[]byte("Add"), {3, 4, 0, 10}}),
		// A dict of List references (nested proxies): a create, a store.
		appendRequest(nil, 7, opCreate, 0, 0, 0, [][]byte{{kindDict, kindList}, []byte("string→*manager.List[int]"), nil}),
		appendRequest(nil, 8, opDictSet, 7, 6, 0, [][]byte{k, append(putU64(7), putU64(2)...)}),
		appendRequest(nil, 9, opListAppend, 7, 7, 0, [][]byte{append(putU64(7), putU64(6)...), nil}),
		{msgPing}, {msgCancel, 5}, {msgRequest, 0xff, 0xff},
	}
}

// FuzzParseRequest: no input panics the request decoder or makes it
// allocate beyond the input.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r request
		if parseRequest(b, &r) == nil {
			for _, a := range r.args {
				if len(a) > len(b) {
					t.Fatal("argument longer than the message")
				}
			}
		}
	})
}

// FuzzParseResponse: the client's decoder of answers, and of the error
// envelope inside them.
func FuzzParseResponse(f *testing.F) {
	f.Add(appendOK(nil, 1, [][]byte{{1, 2}, nil}))
	f.Add(append(appendErrHeader(nil, 2), 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r response
		if parseResponse(b, &r, nil) == nil && r.status == statusErr {
			_ = remoteErr(r.envelope).Error()
		}
	})
}

// FuzzProxyState: a received proxy's state never panics the importer.
func FuzzProxyState(f *testing.F) {
	f.Add([]byte{stateVersion, kindDict, 1, 'x', 4, 'u', 'n', 'i', 'x', 1, '@', 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 32, 200, 15})
	f.Fuzz(func(t *testing.T, b []byte) { parseState(b) })
}

// FuzzServer sends a message to a live server after a valid hello and a
// few objects: whatever it is, the server answers or drops the
// connection, and never panics or hangs.
func FuzzServer(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	s := newServer(true, slog.New(slog.DiscardHandler))
	f.Cleanup(s.close)
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, b := memPipe(true)
		done := make(chan struct{})
		go func() { s.serveConn(b); close(done) }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := newClient(ctx, a, 0, address{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []byte{kindDict, kindList, kindQueue, kindLock, kindCustom} {
			desc := ""
			if k == kindCustom {
				desc = counterType.Name()
			}
			init := [][]byte{{k}, []byte(desc), nil}
			if k == kindQueue {
				init = append(init, putU64(1))
			}
			c.call(ctx, opCreate, 0, init)
		}
		// Objects of references (nested proxies): a dict of lists, a list
		// of dicts.
		c.call(ctx, opCreate, 0, [][]byte{{kindDict, kindList}, []byte("string→*manager.List[int]"), nil})
		c.call(ctx, opCreate, 0, [][]byte{{kindList, kindDict}, []byte("*manager.Dict[string,int]"), nil})
		// The fuzzed message, with the real instance id patched in where
		// a request carries one, so it reaches the objects.
		if len(msg) > 0 && msg[0] == msgRequest {
			var r request
			if parseRequest(msg, &r) == nil && r.budget == 0 {
				for i, a := range r.args {
					if len(a) == refLen { // a reference: to this instance
						r.args[i] = append(putU64(c.inst), a[8:]...)
					}
				}
				r.budget = 100_000 // a blocking request ends within 100ms
				msg = appendRequest(nil, r.id, r.op, c.inst, r.obj%8, r.budget, r.args)
			}
		}
		c.send(func(buf []byte) []byte { return append(buf, msg...) })
		c.call(ctx, opHello, 0, [][]byte{putU64(2000), {1}}) // still serving, or dropped
		c.close()
		<-done
	})
}
