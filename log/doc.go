// Package log is ledge's storage engine: a durable, segmented append log
// per stream, read zero-copy through memory maps. A stream is a folder of
// preallocated segment files, each named by the offset of its first record
// with a sparse offset index and a time index beside it; records are
// written in CRC32C-framed batches, optionally compressed with s2 or zstd.
// The on-disk format is docs/FORMAT.md (format version 1).
//
// # Writing
//
// Many goroutines may call Append concurrently. Their records are gathered
// into batches that one commit goroutine per log writes with one write
// call and, under SyncAlways, one fdatasync for all of them (group commit).
// Append returns the record's offset at once and reports durability through
// an optional callback; WaitDurable blocks instead. AppendBatch is the fast
// path for one goroutine with many records. Offsets are dense int64s.
//
// # Reading
//
// A Reader walks the stream from an offset or a timestamp and waits for new
// records without polling. It sees a record once its append is
// acknowledged (below DurableOffset), not as soon as it is written: under
// SyncAlways and SyncInterval a written record can still be erased by a
// power loss before its fsync, and its offset would then be reused by a
// different record after the restart, so a consumer that had processed it
// and committed its cursor past it would skip the new one without knowing.
// Wait and Changed wake when the durable offset advances; under SyncNever
// records are acknowledged, and visible, once written. Records it returns are slices of the mapped
// segment (or, for compressed batches, of a buffer the Reader owns); they
// are valid until the Reader's Release or Close, and the Reader keeps the
// segments it read from mapped until then, even if retention deletes them.
// A Reader is for one goroutine; Log methods are safe for concurrent use.
//
// # Defaults for edge boxes
//
// Segments default to 32 MiB. Small enough that: a retention pass frees
// space on a small SD card or eMMC in useful steps; eight segments fit the
// 256 MiB mapped-bytes cap that 32-bit ARM gets by default (its address
// space is 2-3 GiB, shared with the heap); recovery, which CRC-checks the
// whole active segment, stays well under a second on a Cortex-A53 without
// CRC instructions. Large enough that files are few and a segment is
// preallocated (one fallocate, contiguous blocks, no per-write block
// allocation on flash) and fsynced on sealing only once per 32 MiB.
// Batches close at 16 KiB, so a read at a random offset skips at most that
// many bytes of records; the batches of one commit are written with one
// call of up to 1 MiB, so flash still sees large sequential writes.
//
// # Recovery
//
// Open validates the last segment batch by batch (length, offset
// continuity, CRC) and cuts a torn tail, rebuilds missing or damaged index
// files, and returns what it did in a RecoveryReport. A damaged batch in a
// sealed segment surfaces as a *CorruptError naming stream, segment and
// offset when it is read; the rest of the stream stays readable. A record
// acknowledged under SyncAlways or SyncInterval survives a crash.
package log
