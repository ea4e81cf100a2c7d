package hostsim

import "sync"

// Metric is one metric the module defined, with its current value. Name is the
// name the module gave; Envoy stores it as "wasmcustom.<name>" (the
// custom_stat_namespace_ of source/extensions/common/wasm/context.cc
// Context::defineMetric).
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

// statsScope holds the metrics of every VM of a Module. Envoy defines them in
// the stats scope of the base Wasm, which every clone shares (wasm.cc copies
// scope_ into each worker's VM and into the canary), and the stats store
// gives one stat per name: several VMs defining the same name and type add
// into, and read, one value.
type statsScope struct {
	mu    sync.Mutex
	byKey map[metricKey]*Metric
	order []*Metric
}

// metrics are one VM's metric ids: Envoy numbers them per Wasm instance
// (Wasm::nextCounterMetricId...), each one naming a stat of the shared scope.
type metrics struct {
	scope *statsScope
	byID  map[uint32]*Metric
	next  [3]uint32
}

// init starts the ids of a new instance: a reloaded VM starts with none.
func (ms *metrics) init(scope *statsScope) {
	ms.scope = scope
	ms.byID = map[uint32]*Metric{}
	ms.next = [3]uint32{uint32(MetricCounter), uint32(MetricGauge), uint32(MetricHistogram)}
}

// define returns a new id for the metric; the same type and name share one
// metric, as Envoy's stats scope returns the existing stat.
func (ms *metrics) define(t MetricType, name string) uint32 {
	sc := ms.scope
	sc.mu.Lock()
	k := metricKey{t, name}
	m, ok := sc.byKey[k]
	if !ok {
		if sc.byKey == nil {
			sc.byKey = map[metricKey]*Metric{}
		}
		m = &Metric{Name: name, Type: t}
		sc.byKey[k] = m
		sc.order = append(sc.order, m)
	}
	sc.mu.Unlock()
	ms.next[t] += metricIDIncrement
	id := ms.next[t]
	ms.byID[id] = m
	return id
}

func (ms *metrics) lookup(id uint32) (*Metric, MetricType) {
	return ms.byID[id], MetricType(id & metricTypeMask)
}

// add is a counter's add or a gauge's add/sub (a negative offset wraps as
// Envoy's Gauge::sub does).
func (ms *metrics) add(m *Metric, offset uint64) {
	ms.scope.mu.Lock()
	m.Value += offset
	ms.scope.mu.Unlock()
}

// record is proxy_record_metric: counters add, gauges set, histograms record.
func (ms *metrics) record(m *Metric, t MetricType, value uint64) {
	ms.scope.mu.Lock()
	defer ms.scope.mu.Unlock()
	switch t {
	case MetricCounter:
		m.Value += value
	case MetricGauge:
		m.Value = value
	case MetricHistogram:
		m.Samples = append(m.Samples, value)
		m.Value = uint64(len(m.Samples))
	}
}

func (ms *metrics) value(m *Metric) uint64 {
	ms.scope.mu.Lock()
	defer ms.scope.mu.Unlock()
	return m.Value
}

// Metrics returns every metric the Module's VMs defined, this one or others,
// in definition order, with the values they share.
func (vm *VM) Metrics() []Metric {
	sc := vm.metrics.scope
	sc.mu.Lock()
	defer sc.mu.Unlock()
	out := make([]Metric, len(sc.order))
	for i, m := range sc.order {
		out[i] = *m
		out[i].Samples = append([]uint64(nil), m.Samples...)
	}
	return out
}

// Metric returns the metric with the given name and type, as Metrics does.
func (vm *VM) Metric(t MetricType, name string) (Metric, bool) {
	sc := vm.metrics.scope
	sc.mu.Lock()
	defer sc.mu.Unlock()
	m, ok := sc.byKey[metricKey{t, name}]
	if !ok {
		return Metric{}, false
	}
	out := *m
	out.Samples = append([]uint64(nil), m.Samples...)
	return out, true
}
