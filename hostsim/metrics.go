package hostsim

// Metric is one metric the module defined, with its current value. Name is the
// name the module gave; Envoy stores it under the "wasmcustom." stat namespace
// (source/extensions/common/wasm/context.cc Context::defineMetric).
type Metric struct {
	Name string
	Type MetricType
	// Value is the counter or gauge value; for a histogram, the number of samples.
	Value uint64
	// Samples are a histogram's recorded values, in order.
	Samples []uint64
}

// Envoy's metric ids carry the type in their low two bits and count up by 4 per
// type (source/extensions/common/wasm/wasm.h kMetricTypeMask, kMetricIdIncrement).
const (
	metricTypeMask    = 0x3
	metricIDIncrement = 0x4
)

type metricKey struct {
	t    MetricType
	name string
}

type metrics struct {
	byID  map[uint32]*Metric
	byKey map[metricKey]*Metric
	order []*Metric
	next  [3]uint32
}

func (ms *metrics) init() {
	ms.byID = map[uint32]*Metric{}
	ms.byKey = map[metricKey]*Metric{}
	ms.next = [3]uint32{uint32(MetricCounter), uint32(MetricGauge), uint32(MetricHistogram)}
}

// define returns a new id for the metric; the same type and name share one
// metric, as Envoy's stats scope returns the existing stat.
func (ms *metrics) define(t MetricType, name string) uint32 {
	k := metricKey{t, name}
	m, ok := ms.byKey[k]
	if !ok {
		m = &Metric{Name: name, Type: t}
		ms.byKey[k] = m
		ms.order = append(ms.order, m)
	}
	ms.next[t] += metricIDIncrement
	id := ms.next[t]
	ms.byID[id] = m
	return id
}

func (ms *metrics) lookup(id uint32) (*Metric, MetricType) {
	return ms.byID[id], MetricType(id & metricTypeMask)
}

// Metrics returns every metric the module defined, in definition order.
func (vm *VM) Metrics() []Metric {
	out := make([]Metric, len(vm.metrics.order))
	for i, m := range vm.metrics.order {
		out[i] = *m
		out[i].Samples = append([]uint64(nil), m.Samples...)
	}
	return out
}

// Metric returns the metric with the given name and type.
func (vm *VM) Metric(t MetricType, name string) (Metric, bool) {
	m, ok := vm.metrics.byKey[metricKey{t, name}]
	if !ok {
		return Metric{}, false
	}
	out := *m
	out.Samples = append([]uint64(nil), m.Samples...)
	return out, true
}
