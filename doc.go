// Package latch is the vocabulary of latch, a just-in-time access broker for
// EC2: grants, their sources, ports and states, the rule-tag contract, and the
// ports the rest of the program plugs into ([Store], [Firewall], [Clock]).
//
// It imports only the standard library. Every other package either
// implements one of these ports for one dependency (sqlite, aws) or drives
// them (broker, revoker).
//
// # Invariants
//
//   - A grant opens exactly one rule: one protocol, one port range, one
//     source address (/32 or /128).
//   - A grant's expiry is written onto its rule ([TagExpiresAt]), so any
//     latch process can revoke it from AWS alone, with an empty store.
//   - Grants that ask for the same opening share one rule; the rule carries
//     the latest expiry among them and is revoked when the last one ends.
//   - A grant is recorded before AWS is called, and every AWS call is
//     idempotent, so a crash at any point converges on the next sweep.
package latch
