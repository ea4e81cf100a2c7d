//go:build wasip1

package main

// Ops on one named metric, for the tests of metrics shared by a Module's VMs
// and its canaries. Each defines the metric first (a new id every time, the
// same stat) and logs the id, the status and what it read.

import (
	"strconv"
	"strings"
	"unsafe"
)

// metricOp runs metric-inc:<type>:<name>=<offset>, metric-set:<type>:<name>=<value>
// or metric-get:<type>:<name>.
func metricOp(name, arg string) {
	ts, rest, _ := strings.Cut(arg, ":")
	metric, number, _ := strings.Cut(rest, "=")
	t64, _ := strconv.ParseUint(ts, 10, 32)
	var id uint32
	proxyDefineMetric(uint32(t64), ptr(metric), uint32(len(metric)), unsafe.Pointer(&id))
	var st uint32
	var v uint64
	switch name {
	case "metric-inc":
		n, _ := strconv.ParseInt(number, 10, 64)
		st = proxyIncrementMetric(id, n)
	case "metric-set":
		n, _ := strconv.ParseUint(number, 10, 64)
		st = proxyRecordMetric(id, n)
	case "metric-get":
		st = proxyGetMetric(id, unsafe.Pointer(&v))
	}
	logf(2, "op="+name+" id="+itoa(id), "status="+itoa(st), "value="+strconv.FormatUint(v, 10))
}
