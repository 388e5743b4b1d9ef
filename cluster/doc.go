// Package cluster runs multiproc pools on NATS JetStream.
package cluster
