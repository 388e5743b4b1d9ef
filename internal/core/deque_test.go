package core

import "testing"

// TestDequeRequeueOrder guards the order in which a dead worker's unstarted
// tasks go back: before everything queued, in their own order.
func TestDequeRequeueOrder(t *testing.T) {
	var d deque
	ts := make([]*Task, 10)
	for i := range ts {
		ts[i] = &Task{Items: i}
	}
	for _, t := range ts[4:8] {
		d.pushBack(t)
	}
	d.popFront() // head moves, leaving room at the front
	d.pushFront(ts[0:1])
	d.pushFront(ts[1:4]) // more than the room left: reallocates
	want := []int{1, 2, 3, 0, 5, 6, 7}
	for i, w := range want {
		if d.len() == 0 {
			t.Fatalf("deque empty after %d items", i)
		}
		if got := d.popFront().Items; got != w {
			t.Fatalf("item %d = %d, want %d", i, got, w)
		}
	}
	if d.len() != 0 {
		t.Fatalf("%d items left", d.len())
	}
}
