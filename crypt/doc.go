// Package crypt keeps jobfs's env secrets: the daemon's master key, the AEAD
// that seals each config/env value at rest, and the Masker that hides those
// values in every log.
//
// Master key. One file, <state>/master.key: 32 random bytes, mode 0600,
// created at first start (LoadOrCreateMasterKey). A key file that group or
// others can read or write, that is a symlink, or that has the wrong size is
// refused with the command that fixes it; nothing is ever derived from it.
//
// Sealing. A value is sealed with XChaCha20-Poly1305 under a key derived with
// HKDF-SHA256 from the master key, the job's id and the job's runtime type, so
// a value opens only for the job and runtime it was set for: after a change of
// config/type, Open fails with ErrOpen and the caller asks for the variable to
// be set again. The variable's name is the additional data, so a sealed value
// copied to another name does not open either. Sealed form: a random 24-byte
// nonce, then the ciphertext and its 16-byte tag. jobs shows these bytes as
// text (jobfs-sealed:v1:<job>:<runtime>:<base64>) when config/env/NAME is
// read, and takes that text back only where Open succeeds: the same job,
// name and master key. So backups carry secrets without any plaintext.
//
// Masking. A Masker wraps a log writer and writes "***" in place of every
// occurrence of a secret of 4 bytes or more (MinMaskLen). Shorter values are
// not masked: "on", "1" or "db" would hit ordinary words everywhere and make
// logs unreadable while hiding nothing of worth. Where occurrences overlap,
// the longest match at a position wins and a match that starts inside it and
// runs past its end extends the mask, so no byte of any occurrence is shown;
// occurrences that only touch are masked separately ("******"). The Masker
// holds back only what could still be the start of a secret and writes it as
// soon as it cannot, so live output is delayed only while it could be a
// secret; Flush writes the rest at the end of the stream.
//
// Concurrency: a Sealer is safe for concurrent use; a Masker is used by one
// goroutine at a time, like the writer it wraps.
package crypt
