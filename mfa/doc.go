// Package mfa implements the second login factor: time-based one-time
// passwords (TOTP, RFC 6238) and single-use backup codes.
//
// It mounts no routes and stores nothing. The provider package drives the
// login and enrolment steps, keeps state through storage.Store (the sealed
// TOTP secret, the last accepted time step, backup code hashes, per-login
// challenges and the account-wide lock) and writes the audit events. This
// package supplies the cryptography those steps need:
//
//   - Codec.NewEnrollment creates a TOTP secret with its otpauth:// URI and
//     QR code. Codes use HMAC-SHA1, 6 digits and 30-second steps, which
//     pquerna/otp documents as compatible with most authenticator apps.
//   - Codec.SealSecret and Codec.OpenSecret encrypt the secret for storage,
//     bound to the user it belongs to.
//   - MatchTOTP checks a code against the current step and one step either
//     side, and returns the matched step. It does not stop replays: the
//     caller must accept a step only if it is greater than the last accepted
//     one (storage.Store.AcceptTOTPStep does this atomically).
//   - Codec.NewBackupCodes and Codec.HashBackupCode create backup codes and
//     the keyed hashes that are stored in place of them. Marking a code used
//     is the store's job (storage.Store.UseBackupCode).
//
// Counting wrong codes against MaxChallengeFailures and locking the account
// are also left to the caller.
package mfa
