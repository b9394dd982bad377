// Capability names, through libcap: the one place AgentGate turns capability numbers into the
// names policies and audit records use (so new kernel capabilities get libcap's spelling).
#ifndef AGENTGATE_CSUPPORT_CAPABILITIES_H
#define AGENTGATE_CSUPPORT_CAPABILITIES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The highest capability number this libcap knows, plus one (`cap_max_bits`).
int agentgate_cap_max_bits(void);

/// Writes the upper-case name of capability `cap` (e.g. "CAP_SYS_ADMIN") into `buf` via
/// `cap_to_name`; returns its length, or -errno (-EINVAL for an unknown number, -ERANGE when
/// `capacity` is too small).
int agentgate_cap_name(int cap, char *buf, size_t capacity);

/// Parses a capability name (any case, with or without "cap_") via `cap_from_name`; returns its
/// number or -EINVAL.
int agentgate_cap_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif
