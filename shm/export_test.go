package shm

import "os"

// AttachValue and AttachArray map a segment from its file, as a process
// that received it will (the resource mechanism calls them then).
func AttachValue[T any](f *os.File) (*Value[T], error) { return attachValue[T](f) }
func AttachArray[T any](f *os.File) (*Array[T], error) { return attachArray[T](f) }
