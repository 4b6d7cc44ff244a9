package main

import (
	"math"
	"math/rand/v2"
)

// keyChooser picks the index of a pre-loaded key; one is shared by all
// workers, each with its own *rand.Rand.
type keyChooser interface {
	Next(r *rand.Rand) int
}

// newChooser returns the chooser of distribution dist over n keys.
func newChooser(dist string, n int, theta float64) keyChooser {
	if dist == distZipf {
		return newZipf(n, theta, 0x5eed)
	}
	return uniformKeys(n)
}

// uniformKeys picks every key with the same probability.
type uniformKeys int

func (u uniformKeys) Next(r *rand.Rand) int { return r.IntN(int(u)) }

// zipfKeys picks rank k (0 = the hottest) with probability proportional
// to 1/(k+1)^theta, by the method of Gray et al., "Quickly generating
// billion-record synthetic databases" (SIGMOD 1994), as YCSB does: exact
// for the two hottest ranks, close beyond them; it works for
// 0 < theta < 1, unlike math/rand's Zipf (s > 1). Ranks are
// mapped to keys through a fixed random permutation, so the hot keys are
// spread over the key space (and over bbolt's pages) rather than being
// the first few.
type zipfKeys struct {
	n                   int
	theta, alpha, zetaN float64
	eta, half           float64
	perm                []int32 // rank -> key index
}

func newZipf(n int, theta float64, seed uint64) *zipfKeys {
	z := &zipfKeys{n: n, theta: theta, alpha: 1 / (1 - theta), zetaN: zeta(n, theta)}
	z.half = 1 + math.Pow(0.5, theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2, theta)/z.zetaN)
	z.perm = make([]int32, n)
	for i := range z.perm {
		z.perm[i] = int32(i)
	}
	rand.New(rand.NewPCG(seed, 0)).Shuffle(n, func(i, j int) { z.perm[i], z.perm[j] = z.perm[j], z.perm[i] })
	return z
}

// zeta is the sum over i = 1..n of 1/i^theta.
func zeta(n int, theta float64) float64 {
	var s float64
	for i := 1; i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

// rank draws a rank in [0, n).
func (z *zipfKeys) rank(r *rand.Rand) int {
	u := r.Float64()
	uz := u * z.zetaN
	switch {
	case uz < 1:
		return 0
	case uz < z.half && z.n > 1:
		return 1
	}
	k := int(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(max(k, 0), z.n-1)
}

func (z *zipfKeys) Next(r *rand.Rand) int { return int(z.perm[z.rank(r)]) }

// probability is the exact chance of rank k, for tests and the report.
func (z *zipfKeys) probability(k int) float64 {
	return 1 / math.Pow(float64(k+1), z.theta) / z.zetaN
}
