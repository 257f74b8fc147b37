package log_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ledgemq/ledge/log"
)

func Example() {
	dir, _ := os.MkdirTemp("", "ledge-example")
	defer os.RemoveAll(dir)

	l, err := log.Open(dir, log.Options{Sync: log.SyncAlways, Compression: log.CompressS2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	// Many producers: Append returns the offset at once; done reports
	// durability from the commit goroutine.
	rec := log.Record{Subject: []byte("plant.line1.temp"), Payload: []byte("21.5")}
	off, _ := l.Append(&rec, func(off int64, err error) {})
	_ = l.WaitDurable(off)

	// One producer with many records: one call, one batch.
	batch := []log.Record{
		{Subject: []byte("plant.line1.temp"), Payload: []byte("21.6")},
		{Subject: []byte("plant.line2.temp"), Payload: []byte("19.0"),
			Headers: []log.Header{{Key: []byte("unit"), Value: []byte("C")}}},
	}
	first, _ := l.AppendBatch(batch, nil)
	_ = l.WaitDurable(first + 1)

	// A consumer: records are slices of the mapped segment, valid until
	// Release or Close.
	r, _ := l.NewReader(0)
	defer r.Close()
	var m log.Record
	for r.Next(&m) == nil {
		fmt.Printf("%d %s %s %d headers\n", m.Offset, m.Subject, m.Payload, len(m.Headers))
	}
	r.Release()

	// Tailing: Wait sleeps until the next append is acknowledged.
	go func() { _, _ = l.Append(&rec, nil) }()
	if err := r.Wait(context.Background()); err == nil && r.Next(&m) == nil {
		fmt.Println("woke for offset", m.Offset)
	}
	// Output:
	// 0 plant.line1.temp 21.5 0 headers
	// 1 plant.line1.temp 21.6 0 headers
	// 2 plant.line2.temp 19.0 1 headers
	// woke for offset 3
}
