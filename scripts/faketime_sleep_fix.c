/* LD_PRELOADed before libfaketime for the suite's moved-clock pass (scripts/test.sh).
 *
 * With FAKETIME_DONT_FAKE_MONOTONIC=1 (needed: Python's timed lock waits use
 * sem_clockwait(CLOCK_MONOTONIC), which libfaketime 0.9.10 does not intercept, so a faked
 * monotonic clock makes every Event.wait(timeout) hang), libfaketime still shifts the deadline
 * of an absolute CLOCK_MONOTONIC clock_nanosleep() by the fake offset, and Python 3.11's
 * time.sleep() then fails with EINVAL. The monotonic clock is real here, so such a sleep is
 * turned into the equivalent relative one, which libfaketime passes through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *req, struct timespec *rem)
{
    static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
    if (!next)
        next = (int (*)(clockid_t, int, const struct timespec *, struct timespec *))dlsym(RTLD_NEXT, "clock_nanosleep");
    if ((flags & TIMER_ABSTIME) && clock_id == CLOCK_MONOTONIC && req) {
        struct timespec now, rel;
        clock_gettime(CLOCK_MONOTONIC, &now);
        rel.tv_sec = req->tv_sec - now.tv_sec;
        rel.tv_nsec = req->tv_nsec - now.tv_nsec;
        if (rel.tv_nsec < 0) { rel.tv_nsec += 1000000000L; rel.tv_sec -= 1; }
        if (rel.tv_sec < 0) return 0;  /* the deadline has passed */
        return next(clock_id, 0, &rel, rem);
    }
    return next(clock_id, flags, req, rem);
}
