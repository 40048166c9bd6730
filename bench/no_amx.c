/* LD_PRELOAD shim for bench/node_rounds.py: refuse the AMX tile-data permission.
 *
 * ggml asks the kernel for AMX (arch_prctl ARCH_REQ_XCOMP_PERM) before it places Q8_0/Q4_x
 * weights in its AMX buffer. Some virtual machines advertise AMX and grant that request, yet
 * trap the tile instructions (SIGILL in tinygemm_kernel_amx). Refusing the request makes
 * ggml print "AMX is not ready to be used!" and use its AVX-512 kernels instead, in
 * llama-server and in llmlb's llama-cpp-python alike. Every other syscall passes through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>

typedef long (*syscall_fn)(long, ...);

long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_arch_prctl && a[0] == 0x1023) { /* ARCH_REQ_XCOMP_PERM */
        errno = EPERM;
        return -1;
    }
    static syscall_fn real;
    if (!real) real = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
