// Package durable holds the one file-system step that the state machine,
// the seeding of a data directory and the backup download all need to make
// a rename survive a crash: fsyncing the directory that holds the entry.
package durable
