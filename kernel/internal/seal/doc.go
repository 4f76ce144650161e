// Package seal encrypts small secrets at rest (signing keys, TOTP secrets)
// with AES-256-GCM under the kernel's EDULURE_SECRET_KEY.
package seal
