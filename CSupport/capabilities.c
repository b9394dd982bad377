#include "CSupportCapabilities.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/capability.h>

int agentgate_cap_max_bits(void) {
    return (int)cap_max_bits();
}

int agentgate_cap_name(int cap, char *buf, size_t capacity) {
    if (cap < 0 || cap >= (int)cap_max_bits()) return -EINVAL;
    char *name = cap_to_name((cap_value_t)cap);
    if (name == NULL) return -ENOMEM;
    size_t len = strlen(name);
    int result;
    if (len + 1 > capacity) {
        result = -ERANGE;
    } else {
        // libcap spells names in lower case ("cap_sys_admin"); policies and records use the
        // kernel's upper-case spelling.
        for (size_t i = 0; i < len; i++) buf[i] = (char)toupper((unsigned char)name[i]);
        buf[len] = '\0';
        result = (int)len;
    }
    cap_free(name);
    return result;
}

int agentgate_cap_from_name(const char *name) {
    cap_value_t value;
    if (name == NULL || cap_from_name(name, &value) != 0) return -EINVAL;
    return (int)value;
}
