package broker

import (
	"errors"
	"testing"

	"github.com/ledgemq/ledge/log"
)

func TestStorageReportsDiskUseAndState(t *testing.T) {
	m := &log.Metrics{}
	b, err := Open(Options{Dir: t.TempDir(), LogMetrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	file := mustStream(t, b, StreamConfig{Name: "FILE", Subjects: []string{"f.>"}})
	mem := mustStream(t, b, StreamConfig{Name: "MEM", Subjects: []string{"m.>"}, Storage: MemoryStorage})
	for range 10 {
		publish(t, file, "f.x", "0123456789")
		publish(t, mem, "m.x", "0123456789")
	}
	fi := file.Storage()
	if !fi.File || fi.Segments != 1 || fi.DiskBytes < 100 || fi.Err != nil {
		t.Errorf("file stream storage %+v, want one segment of at least 100 bytes and no error", fi)
	}
	if mi := mem.Storage(); mi.File || mi.DiskBytes != 0 || mi.Err != nil {
		t.Errorf("memory stream storage %+v", mi)
	}
	if n := m.Durable.Snapshot().Count; n == 0 {
		t.Errorf("no durable latency observed through the broker's log metrics")
	}
	if err := b.DeleteStream("FILE"); err != nil {
		t.Fatal(err)
	}
	if fi := file.Storage(); !errors.Is(fi.Err, ErrClosed) {
		t.Errorf("deleted stream storage error %v, want ErrClosed", fi.Err)
	}
}
