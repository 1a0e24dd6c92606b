/* For running the Windows build under Wine 8.0 in tests ONLY; never shipped.
 *
 * Rust's standard library (1.78 and later) imports ProcessPrng from bcryptprimitives.dll,
 * which every supported Windows 10/11 has and Debian's Wine 8.0 lacks: without it the exe does
 * not start (status c0000135). This DLL, copied into a scratch Wine prefix's system32 by
 * scripts/wine-run.sh, answers ProcessPrng from advapi32's RtlGenRandom (SystemFunction036).
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
