package policies

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// minPlaceholderLen is the shortest placeholder the scanner can find: it
// indexes placeholders by their first minPlaceholderLen bytes.
const minPlaceholderLen = 16

// checkPlaceholder reports why ph cannot be a placeholder, or nil: it must
// be at least 16 bytes of [A-Za-z0-9_.~-], which need no escaping in a header,
// a query or Basic credentials. ParseConfig applies it to every placeholder.
func checkPlaceholder(ph string) error {
	if len(ph) < minPlaceholderLen {
		return fmt.Errorf("must be at least %d bytes", minPlaceholderLen)
	}
	for i := 0; i < len(ph); i++ {
		if c := ph[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '~' || c == '-') {
			return fmt.Errorf("byte %d is not one of [A-Za-z0-9_.~-]", i)
		}
	}
	return nil
}

// match is one placeholder occurrence at text[start:end].
type match struct {
	start, end int32
	secret     int32 // index into Session.Secrets
}

// gramLen is the length of the sampled grams: one 64-bit load.
const gramLen = 8

// maxStride bounds the distance between samples, so a gram's offsets fit the
// bits of a uint16.
const maxStride = 16

// prefixSlot is one open-addressing slot, keyed by a 16-byte prefix shared by
// the placeholders cands[first:first+n], which are sorted.
type prefixSlot struct {
	lo, hi   uint64
	first, n int32 // n == 0: empty slot
}

// placeholderIndex finds placeholders in one pass over a text; the work per
// text byte does not depend on how many placeholders are configured.
//
// The scan reads one 8-byte gram every stride bytes, where stride is the
// shortest placeholder's length minus 7 (at most 16), so every occurrence of
// a placeholder has a sample at an offset o < stride whose gram lies inside
// it. grams tells, for a gram, a superset of those offsets over all
// placeholders; nearly every sample of ordinary text gets none and stops.
// For each offset given, the candidate start's 16-byte window is looked up
// exactly in slots, and the placeholders behind it (usually one; otherwise a
// binary search) are compared in full. A sample costs a load, two multiplies
// and two table reads; a hit at most stride exact lookups, whatever the
// number of placeholders.
type placeholderIndex struct {
	stride    int
	grams     gramFilter
	slots     []prefixSlot
	slotShift uint // 64 - log2(len(slots))
	cands     []int32
	ph        [][]byte // placeholder per secret index
}

// newPlaceholderIndex indexes the secrets' placeholders. They must be
// scannable (checkPlaceholder) and prefix-free: at most one may match at any
// position, so the scan never has to choose.
func newPlaceholderIndex(secrets []Secret) (*placeholderIndex, error) {
	x := &placeholderIndex{ph: make([][]byte, len(secrets)), stride: maxStride}
	for i, s := range secrets {
		if err := checkPlaceholder(s.Placeholder); err != nil {
			return nil, fmt.Errorf("secrets.%s.placeholder: %w", s.Name, err)
		}
		x.ph[i] = []byte(s.Placeholder)
		x.stride = min(x.stride, len(s.Placeholder)-gramLen+1)
	}
	sorted := make([]int32, len(secrets))
	for i := range sorted {
		sorted[i] = int32(i)
	}
	slices.SortFunc(sorted, func(a, b int32) int { return bytes.Compare(x.ph[a], x.ph[b]) })
	for k := 1; k < len(sorted); k++ {
		a, b := sorted[k-1], sorted[k]
		if bytes.HasPrefix(x.ph[b], x.ph[a]) {
			return nil, fmt.Errorf("secrets.%s.placeholder: begins with the placeholder of secrets.%s",
				secrets[b].Name, secrets[a].Name)
		}
	}

	// Sorted order puts placeholders sharing a 16-byte prefix next to each
	// other, each group sorted, as lookup's binary search needs.
	var groups [][]int32
	for k, i := range sorted {
		if k == 0 || !bytes.Equal(x.ph[i][:minPlaceholderLen], x.ph[sorted[k-1]][:minPlaceholderLen]) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], i)
	}
	// At most a quarter full keeps probe sequences for absent keys short.
	x.slots = make([]prefixSlot, tableSize(len(groups), 4))
	x.slotShift = uint(64 - bits.TrailingZeros(uint(len(x.slots))))
	for _, g := range groups {
		ph := x.ph[g[0]]
		lo, hi := binary.LittleEndian.Uint64(ph), binary.LittleEndian.Uint64(ph[8:])
		mask := len(x.slots) - 1
		i := x.slotOf(lo, hi)
		for x.slots[i].n != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = prefixSlot{lo: lo, hi: hi, first: int32(len(x.cands)), n: int32(len(g))}
		x.cands = append(x.cands, g...)
	}

	x.grams = newGramFilter(x.stride * len(secrets))
	for _, ph := range x.ph {
		for o := 0; o < x.stride; o++ {
			x.grams.add(binary.LittleEndian.Uint64(ph[o:]), o)
		}
	}
	return x, nil
}

// gramFilter maps an 8-byte gram to a superset of the offsets at which it
// sits in the placeholders. Two hashes, each into a sparse table, make a
// false answer for a gram no placeholder holds about one in a hundred; the
// tables grow with the placeholders to keep it so.
type gramFilter struct {
	present []uint64 // bit by the first hash, at most 1/16 set
	offsets []uint16 // offsets by the second hash, at most 1/8 non-zero
	presentShift,
	offsetsShift uint // 64 - log2 of the tables' sizes in entries
}

func newGramFilter(grams int) gramFilter {
	present := tableSize(grams, 16)
	offsets := tableSize(grams, 8)
	return gramFilter{
		present:      make([]uint64, max(1, present/64)),
		offsets:      make([]uint16, offsets),
		presentShift: uint(64 - bits.TrailingZeros(uint(max(64, present)))),
		offsetsShift: uint(64 - bits.TrailingZeros(uint(offsets))),
	}
}

func (f *gramFilter) add(gram uint64, offset int) {
	p := gram * 0xC2B2AE3D27D4EB4F >> f.presentShift
	f.present[p/64] |= 1 << (p % 64)
	f.offsets[gram*0x9E3779B97F4A7C15>>f.offsetsShift] |= 1 << offset
}

// lookup returns a bit set of offsets: bit o set if some placeholder may
// hold gram at offset o. It has no branch: in wasm every taken branch is an
// indirect jump.
func (f *gramFilter) lookup(gram uint64) uint16 {
	p := gram * 0xC2B2AE3D27D4EB4F >> f.presentShift
	present := uint16(f.present[p/64]>>(p%64)) & 1
	return f.offsets[gram*0x9E3779B97F4A7C15>>f.offsetsShift] * present
}

// tableSize is the smallest power of two, at least 16, holding n keys at
// one in perKey slots.
func tableSize(n, perKey int) int {
	size := 16
	for size < n*perKey {
		size <<= 1
	}
	return size
}

func (x *placeholderIndex) slotOf(lo, hi uint64) int {
	return int((lo*0x9E3779B97F4A7C15 ^ hi) * 0xC2B2AE3D27D4EB4F >> x.slotShift)
}

// appendMatches appends to dst every placeholder occurrence in text, left to
// right.
func (x *placeholderIndex) appendMatches(dst []match, text []byte) []match {
	stride := x.stride
	floor := 0 // where the previous match ended
	for s := 0; s+gramLen <= len(text); s += stride {
		offsets := x.grams.lookup(binary.LittleEndian.Uint64(text[s : s+gramLen]))
		// The highest offset first is the leftmost candidate start.
		for offsets != 0 {
			o := bits.Len16(offsets) - 1
			offsets &^= 1 << o
			p := s - o
			if p < floor || p+minPlaceholderLen > len(text) {
				continue
			}
			if sec := x.lookup(text[p:]); sec >= 0 {
				floor = p + len(x.ph[sec])
				dst = append(dst, match{start: int32(p), end: int32(floor), secret: sec})
				// Resume at the first sample that can see a start >= floor.
				s = (floor+stride-1)/stride*stride - stride
				break
			}
		}
	}
	return dst
}

// lookup returns the secret whose placeholder begins text, or -1. text is
// at least minPlaceholderLen long.
func (x *placeholderIndex) lookup(text []byte) int32 {
	lo := binary.LittleEndian.Uint64(text)
	hi := binary.LittleEndian.Uint64(text[8:])
	mask := len(x.slots) - 1
	i := x.slotOf(lo, hi)
	for x.slots[i].lo != lo || x.slots[i].hi != hi {
		if x.slots[i].n == 0 {
			return -1
		}
		i = (i + 1) & mask
	}
	sl := x.slots[i]
	if sl.n == 0 {
		return -1
	}
	cs := x.cands[sl.first : sl.first+sl.n]
	if len(cs) == 1 {
		if bytes.HasPrefix(text, x.ph[cs[0]]) {
			return cs[0]
		}
		return -1
	}
	// Placeholders are prefix-free, so the only one that can begin text is
	// the greatest one not above it.
	lowest, above := 0, len(cs)
	for lowest < above {
		mid := int(uint(lowest+above) >> 1)
		if bytes.Compare(x.ph[cs[mid]], text) <= 0 {
			lowest = mid + 1
		} else {
			above = mid
		}
	}
	if lowest == 0 {
		return -1
	}
	if s := cs[lowest-1]; bytes.HasPrefix(text, x.ph[s]) {
		return s
	}
	return -1
}
