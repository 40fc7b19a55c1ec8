// Package calc is a tiny package whose tests run in kestrel VMs:
// kestrel go test ./...
package calc

// Add adds two numbers.
func Add(a, b int) int { return a + b }
