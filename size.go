package multiproc

// defaultPoolSize is the size of a pool created with n == 0.
func defaultPoolSize() int { return CPUCount() }
