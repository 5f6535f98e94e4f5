package router

// maxSchedule bounds the length of a weighted schedule. Weights whose sum
// (after dividing by their GCD) exceeds it are scaled down proportionally,
// keeping every positive weight at least 1.
const maxSchedule = 10000

// schedule returns the order in which routes are picked: one cycle of smooth
// weighted round robin (the scheme nginx uses), in which each route appears
// weight/gcd times and the routes interleave as evenly as the weights allow
// (11:3 gives AAABAAAABAAABA rather than AAAAAAAAAAABBB). weights must be
// positive. The result indexes weights.
func schedule(weights []int) []uint16 {
	w := reduce(weights)
	total := 0
	for _, x := range w {
		total += x
	}
	order := make([]uint16, 0, total)
	current := make([]int, len(w))
	for range total {
		best := 0
		for i, x := range w {
			current[i] += x
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		order = append(order, uint16(best))
	}
	return order
}

// maxWeight bounds a single weight so that sums cannot overflow.
const maxWeight = 1 << 30

// reduce divides weights by their greatest common divisor and, if their sum
// is still above maxSchedule, scales them down to fit (approximately: the
// result keeps every weight at least 1).
func reduce(weights []int) []int {
	w := make([]int, len(weights))
	for i, x := range weights {
		w[i] = min(x, maxWeight)
	}
	divideByGCD(w)
	total := 0
	for _, x := range w {
		total += x
	}
	if total > maxSchedule {
		for i, x := range w {
			w[i] = max(1, int(int64(x)*maxSchedule/int64(total)))
		}
		divideByGCD(w)
	}
	return w
}

func divideByGCD(w []int) {
	g := 0
	for _, x := range w {
		g = gcd(g, x)
	}
	for i := range w {
		w[i] /= g
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
