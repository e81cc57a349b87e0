// Package deploy holds the deployment examples (kubernetes.yaml). It has no code: its tests
// decode the examples against the Kubernetes API types and check that the bot could run as
// written.
package deploy
