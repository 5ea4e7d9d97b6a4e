/*
 * faultshim: an LD_PRELOAD library that injects filesystem faults and crashes UNDER a real
 * process, below any Python-level hook, so tests exercise exactly what users hit.
 *
 * It interposes (dlsym(RTLD_NEXT, ...)) the libc entry points CPython and C extensions use to
 * mutate the disk:
 *
 *   op name   libc functions
 *   rename    rename renameat renameat2
 *   unlink    unlink unlinkat (without AT_REMOVEDIR)
 *   rmdir     rmdir unlinkat(AT_REMOVEDIR)
 *   link      link linkat
 *   symlink   symlink symlinkat              (matched against the new link's path only)
 *   mkdir     mkdir mkdirat
 *   chmod     chmod fchmodat
 *   open      open open64 openat openat64 __open_2 __open64_2 __openat_2 __openat64_2
 *             creat creat64 fopen fopen64    -- only when opening for writing (O_WRONLY,
 *             O_RDWR or O_CREAT; fopen modes with w, a or +). Reads always pass untouched.
 *   write     write                          -- regular files only, and only when enabled
 *                                               (FAULTSHIM_COUNT_WRITES=1 or a write rule)
 *
 * Configuration, read once when the library is loaded:
 *
 *   FAULTSHIM_RULES     ';'-separated rules "op:glob:errno:count". op is a name above or '*';
 *                       glob is an fnmatch(3) pattern (flags 0, so '*' also matches '/')
 *                       tried against every path argument, as given and, for a dirfd-relative
 *                       path, also joined to the directory the fd refers to; errno is a
 *                       symbolic name (EBUSY, ETXTBSY, EACCES, ENOSPC, EIO, EMFILE, ...) or a
 *                       number; count is how many matching calls fail (-1: all of them). The
 *                       first rule that matches and still has a count left decides. The glob
 *                       may itself contain ':' (op is split off the left, errno and count off
 *                       the right).
 *                       A fifth field makes a lock that lasts a given time, "op:glob:errno:
 *                       count:ms": the rule fails matching calls from the first matching call
 *                       until ms milliseconds (a decimal number >= 0) of CLOCK_MONOTONIC have
 *                       passed, then never again; count is then an upper bound (-1: none). A
 *                       process thus meets a lock episode of a known length, however often or
 *                       slowly it retries; 0 ms fails nothing. The five-field reading wins
 *                       whenever the last three fields parse as errno, count and ms, so a
 *                       four-field rule whose glob ends in ":<errno>" and whose count is >= 0
 *                       is misread (harness.Rule refuses to write one).
 *   FAULTSHIM_KILL_AT   K >= 1: raise(SIGKILL) just BEFORE the K-th mutation point runs.
 *   FAULTSHIM_COUNT_FILE  at normal exit (library destructor), write the number of mutation
 *                       points seen, as decimal text plus newline. Not written on _exit(2),
 *                       os._exit() or a kill.
 *   FAULTSHIM_IGNORE    ':'-separated globs; calls whose path (any of them, for rename/link)
 *                       matches are neither counted nor faulted.
 *   FAULTSHIM_LOG       append one tab-separated line per injected fault and per kill:
 *                         kind  pid  point  op  errno-name  path  [path2]
 *                       kind is "fault" or "kill" ("point" lines too with FAULTSHIM_TRACE=1);
 *                       point is the mutation point number (0 for an uncounted write fault);
 *                       errno-name is e.g. EBUSY (a number if the shim has no name for it),
 *                       "SIGKILL" for kills, "-" for trace lines.
 *   FAULTSHIM_TRACE     1: also log every counted mutation point (to debug a kill schedule).
 *   FAULTSHIM_COUNT_WRITES  1: write(2)s to regular files are mutation points too (off by
 *                       default, so counts do not depend on buffering).
 *
 * A mutation point is any intercepted call that is not ignored, whether it then succeeds, is
 * faulted or fails by itself. Counters are per process (a child that execs loads its own copy
 * with the same configuration). Faulted calls return -1 (NULL for fopen) with errno set and do
 * not reach the kernel. Bad configuration is fatal: a message on stderr and exit status 111.
 *
 * Build: gcc -shared -fPIC -O2 -Wall -Wextra -o faultshim.so faultshim.c -ldl
 * Linux/glibc only (x86_64, aarch64).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef AT_REMOVEDIR
#define AT_REMOVEDIR 0x200
#endif
#ifndef O_TMPFILE
#define O_TMPFILE 0
#endif

#define CONFIG_EXIT_STATUS 111

/* ------------------------------------------------------------------------------------------ */
/* Real functions                                                                              */

static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rmdir)(const char *);
static int (*real_link)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_symlink)(const char *, const char *);
static int (*real_symlinkat)(const char *, int, const char *);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_chmod)(const char *, mode_t);
static int (*real_fchmodat)(int, const char *, mode_t, int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real___open_2)(const char *, int);
static int (*real___open64_2)(const char *, int);
static int (*real___openat_2)(int, const char *, int);
static int (*real___openat64_2)(int, const char *, int);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_close)(int);

/* Benign race: every thread stores the same pointer. */
#define RESOLVE(name)                                                                          \
    do {                                                                                       \
        if (__atomic_load_n(&real_##name, __ATOMIC_ACQUIRE) == NULL)                           \
            __atomic_store_n(&real_##name, (__typeof__(real_##name))dlsym(RTLD_NEXT, #name),   \
                             __ATOMIC_RELEASE);                                                \
    } while (0)

/* A function this libc lacks: fail like a kernel without the syscall would. */
#define MISSING(name, fail)                                                                    \
    do {                                                                                       \
        if (real_##name == NULL) {                                                             \
            errno = ENOSYS;                                                                    \
            return fail;                                                                       \
        }                                                                                      \
    } while (0)

static void resolve_all(void)
{
    RESOLVE(rename);
    RESOLVE(renameat);
    RESOLVE(renameat2);
    RESOLVE(unlink);
    RESOLVE(unlinkat);
    RESOLVE(rmdir);
    RESOLVE(link);
    RESOLVE(linkat);
    RESOLVE(symlink);
    RESOLVE(symlinkat);
    RESOLVE(mkdir);
    RESOLVE(mkdirat);
    RESOLVE(chmod);
    RESOLVE(fchmodat);
    RESOLVE(open);
    RESOLVE(open64);
    RESOLVE(openat);
    RESOLVE(openat64);
    RESOLVE(__open_2);
    RESOLVE(__open64_2);
    RESOLVE(__openat_2);
    RESOLVE(__openat64_2);
    RESOLVE(creat);
    RESOLVE(creat64);
    RESOLVE(fopen);
    RESOLVE(fopen64);
    RESOLVE(write);
    RESOLVE(close);
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                               */

enum op { OP_RENAME, OP_UNLINK, OP_RMDIR, OP_LINK, OP_SYMLINK, OP_MKDIR, OP_CHMOD, OP_OPEN,
          OP_WRITE, OP_COUNT_, OP_ANY = -1 };

static const char *const op_names[OP_COUNT_] = {
    "rename", "unlink", "rmdir", "link", "symlink", "mkdir", "chmod", "open", "write",
};

struct rule {
    int op; /* enum op or OP_ANY */
    char *glob;
    int err;
    long remaining;     /* -1: forever */
    long long window;   /* nanoseconds the lock lasts from its first matching call; -1: no limit */
    long long opened;   /* CLOCK_MONOTONIC nanoseconds of that first call; -1: not yet */
};

static struct rule *rules;
static size_t n_rules;
static char **ignores;
static size_t n_ignores;
static unsigned long kill_at;     /* 0: off */
static char *count_file;
static char *log_file;
static int trace;
static int count_writes;
static int write_active; /* write() needs a look: counted or a write rule exists */
static int active;       /* anything configured at all */

static unsigned long points; /* atomic */
static pthread_mutex_t rules_lock = PTHREAD_MUTEX_INITIALIZER;

/* 0: not started, 1: running, 2: done. */
static int init_state;
static __thread int in_init __attribute__((tls_model("initial-exec")));

static const struct {
    const char *name;
    int value;
} errnames[] = {
#define E(x) {#x, x}
    E(EPERM),  E(ENOENT),  E(EINTR),   E(EIO),     E(ENXIO),   E(EBADF),        E(EAGAIN),
    E(ENOMEM), E(EACCES),  E(EBUSY),   E(EEXIST),  E(EXDEV),   E(ENOTDIR),      E(EISDIR),
    E(EINVAL), E(ENFILE),  E(EMFILE),  E(ETXTBSY), E(EFBIG),   E(ENOSPC),       E(EROFS),
    E(EMLINK), E(EPIPE),   E(ENAMETOOLONG),        E(ENOSYS),  E(ENOTEMPTY),    E(ELOOP),
    E(EDQUOT), E(ESTALE),  E(ENOTSUP), E(EOPNOTSUPP),          E(ETIMEDOUT),    E(EWOULDBLOCK),
#undef E
};

/* The symbolic name of err, or its number when the table lacks it. */
static const char *errno_name(int err, char *buf, size_t size)
{
    for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
        if (errnames[i].value == err)
            return errnames[i].name;
    snprintf(buf, size, "%d", err);
    return buf;
}

static void put_stderr(const char *s)
{
    if (real_write != NULL)
        (void)!real_write(2, s, strlen(s));
}

__attribute__((noreturn)) static void config_error(const char *what, const char *value)
{
    put_stderr("faultshim: invalid ");
    put_stderr(what);
    put_stderr(": '");
    put_stderr(value);
    put_stderr("'\n");
    _exit(CONFIG_EXIT_STATUS);
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL) {
        put_stderr("faultshim: out of memory\n");
        _exit(CONFIG_EXIT_STATUS);
    }
    return p;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    if (*s == '\0')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_errno(const char *s)
{
    long v;
    for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
        if (strcmp(errnames[i].name, s) == 0)
            return errnames[i].value;
    if (parse_long(s, &v) == 0 && v > 0 && v < 4096)
        return (int)v;
    return -1;
}

/* Milliseconds as a decimal number >= 0, in nanoseconds; -1 if s is not one. */
static long long parse_ms(const char *s)
{
    char *end;
    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    double ms = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(ms >= 0 && ms <= 1e12))
        return -1; /* the comparison also rejects nan */
    return (long long)(ms * 1e6 + 0.5);
}

/* Copy [from, to) into buf as a string; too long for buf gives "" (which no field accepts). */
static const char *span(const char *from, const char *to, char *buf, size_t size)
{
    size_t n = (size_t)(to - from);
    if (n >= size)
        n = 0;
    memcpy(buf, from, n);
    buf[n] = '\0';
    return buf;
}

static void parse_rule(char *text)
{
    char *whole = xstrdup(text);
    char *c1 = strchr(text, ':');
    char *end = text + strlen(text);
    if (c1 == NULL)
        config_error("FAULTSHIM_RULES entry (want op:glob:errno:count[:ms])", whole);

    /* The last three separators right of the op, right to left: the glob may hold ':' too. */
    char *tail[3] = {NULL, NULL, NULL};
    size_t found = 0;
    for (char *p = end - 1; p > c1 && found < 3; p--)
        if (*p == ':')
            tail[found++] = p;

    int five = 0;
    if (found == 3) {
        char e[64], n[64], m[64];
        long count;
        five = parse_errno(span(tail[2] + 1, tail[1], e, sizeof e)) > 0 &&
               parse_long(span(tail[1] + 1, tail[0], n, sizeof n), &count) == 0 &&
               parse_ms(span(tail[0] + 1, end, m, sizeof m)) >= 0;
    }
    if (!five && found < 2)
        config_error("FAULTSHIM_RULES entry (want op:glob:errno:count[:ms])", whole);
    char *c2 = five ? tail[2] : tail[1];
    char *c3 = five ? tail[1] : tail[0];
    long long window = five ? parse_ms(tail[0] + 1) : -1;
    if (five)
        *tail[0] = '\0';
    *c1 = '\0';
    *c2 = '\0';
    *c3 = '\0';

    struct rule r = {
        .op = -2, .glob = NULL, .err = 0, .remaining = 0, .window = window, .opened = -1};
    if (strcmp(text, "*") == 0)
        r.op = OP_ANY;
    for (int i = 0; i < OP_COUNT_; i++)
        if (strcmp(text, op_names[i]) == 0)
            r.op = i;
    if (r.op == -2)
        config_error("FAULTSHIM_RULES op", whole);
    if (c1[1] == '\0')
        config_error("FAULTSHIM_RULES glob (empty)", whole);
    r.glob = xstrdup(c1 + 1);
    r.err = parse_errno(c2 + 1);
    if (r.err <= 0)
        config_error("FAULTSHIM_RULES errno", whole);
    if (parse_long(c3 + 1, &r.remaining) != 0 || r.remaining < -1)
        config_error("FAULTSHIM_RULES count", whole);
    if (r.op == OP_WRITE || r.op == OP_ANY)
        write_active = 1;

    struct rule *grown = realloc(rules, (n_rules + 1) * sizeof *rules);
    if (grown == NULL)
        config_error("FAULTSHIM_RULES (out of memory)", whole);
    rules = grown;
    rules[n_rules++] = r;
    free(whole);
}

static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static void load_config(void)
{
    const char *v;

    if ((v = getenv("FAULTSHIM_RULES")) != NULL && *v != '\0') {
        char *copy = xstrdup(v), *save = NULL;
        for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
            if (*tok != '\0')
                parse_rule(tok);
        free(copy);
    }
    if ((v = getenv("FAULTSHIM_IGNORE")) != NULL && *v != '\0') {
        char *copy = xstrdup(v), *save = NULL;
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
            if (*tok == '\0')
                continue;
            char **grown = realloc(ignores, (n_ignores + 1) * sizeof *ignores);
            if (grown == NULL)
                config_error("FAULTSHIM_IGNORE (out of memory)", v);
            ignores = grown;
            ignores[n_ignores++] = xstrdup(tok);
        }
        free(copy);
    }
    if ((v = getenv("FAULTSHIM_KILL_AT")) != NULL && *v != '\0') {
        long k;
        if (parse_long(v, &k) != 0 || k < 0)
            config_error("FAULTSHIM_KILL_AT", v);
        kill_at = (unsigned long)k;
    }
    if ((v = getenv("FAULTSHIM_COUNT_FILE")) != NULL && *v != '\0')
        count_file = xstrdup(v);
    if ((v = getenv("FAULTSHIM_LOG")) != NULL && *v != '\0')
        log_file = xstrdup(v);
    trace = env_flag("FAULTSHIM_TRACE");
    count_writes = env_flag("FAULTSHIM_COUNT_WRITES");
    if (count_writes)
        write_active = 1;
    active = n_rules > 0 || kill_at > 0 || count_file != NULL || trace || count_writes;
}

static void ensure_init(void)
{
    if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == 2 || in_init)
        return; /* done, or a call made by our own initialisation: pass it through */
    int expected = 0;
    if (__atomic_compare_exchange_n(&init_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        in_init = 1;
        resolve_all();
        load_config();
        in_init = 0;
        __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2)
        sched_yield();
}

__attribute__((constructor)) static void faultshim_init(void)
{
    ensure_init();
}

__attribute__((destructor)) static void faultshim_fini(void)
{
    if (count_file == NULL || real_open == NULL || real_write == NULL || real_close == NULL)
        return;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lu\n", __atomic_load_n(&points, __ATOMIC_SEQ_CST));
    int fd = real_open(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!real_write(fd, buf, (size_t)n);
    real_close(fd);
}

/* ------------------------------------------------------------------------------------------ */
/* Matching, counting, injecting                                                               */

/* A path as the call names it, and (dirfd-relative only) joined to the fd's directory. */
struct cand {
    const char *given;
    const char *joined; /* NULL when not applicable */
    char buf[PATH_MAX + 1];
};

static void cand_init(struct cand *c, int dirfd, const char *path)
{
    c->given = path;
    c->joined = NULL;
    if (path == NULL || path[0] == '/' || dirfd == AT_FDCWD || dirfd < 0)
        return;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, c->buf, PATH_MAX);
    if (n <= 0 || (size_t)n + 1 + strlen(path) > PATH_MAX)
        return;
    c->buf[n] = '\0';
    if (c->buf[n - 1] != '/')
        strcat(c->buf, "/");
    strcat(c->buf, path);
    c->joined = c->buf;
}

static int cand_match(const struct cand *c, const char *glob)
{
    if (c->given == NULL)
        return 0;
    if (fnmatch(glob, c->given, 0) == 0)
        return 1;
    return c->joined != NULL && fnmatch(glob, c->joined, 0) == 0;
}

static int ignored(const struct cand *a, const struct cand *b)
{
    for (size_t i = 0; i < n_ignores; i++)
        if (cand_match(a, ignores[i]) || (b != NULL && cand_match(b, ignores[i])))
            return 1;
    return 0;
}

static void log_line(const char *kind, unsigned long point, enum op op, const char *err,
                     const char *p1, const char *p2)
{
    if (log_file == NULL)
        return;
    char line[2 * PATH_MAX + 160];
    int n = snprintf(line, sizeof line, "%s\t%ld\t%lu\t%s\t%s\t%s%s%s\n", kind, (long)getpid(),
                     point, op_names[op], err, p1 ? p1 : "", p2 ? "\t" : "", p2 ? p2 : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    int fd = real_open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!real_write(fd, line, (size_t)n); /* one O_APPEND write: lines never interleave */
    real_close(fd);
}

/* The clock Python's time.monotonic() reads too, so both sides measure the same episode. */
static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Decide the fate of one mutating call: returns 0 to let it run, or the errno to fail it with.
 * Kills the process (before the call runs) when it is the FAULTSHIM_KILL_AT-th point.
 */
static int intercept2(enum op op, int dirfd1, const char *p1, int dirfd2, const char *p2)
{
    ensure_init();
    if (!active || in_init)
        return 0;
    int saved_errno = errno;
    struct cand a, b;
    cand_init(&a, dirfd1, p1);
    if (p2 != NULL)
        cand_init(&b, dirfd2, p2);
    if (ignored(&a, p2 != NULL ? &b : NULL)) {
        errno = saved_errno;
        return 0;
    }

    unsigned long point = 0;
    if (op != OP_WRITE || count_writes) {
        point = __atomic_add_fetch(&points, 1, __ATOMIC_SEQ_CST);
        if (trace)
            log_line("point", point, op, "-", p1, p2);
        if (kill_at != 0 && point == kill_at) {
            log_line("kill", point, op, "SIGKILL", p1, p2);
            raise(SIGKILL);
            _exit(128 + SIGKILL); /* not reached */
        }
    }

    int err = 0;
    pthread_mutex_lock(&rules_lock);
    for (size_t i = 0; i < n_rules && err == 0; i++) {
        struct rule *r = &rules[i];
        if ((r->op != (int)op && r->op != OP_ANY) || r->remaining == 0)
            continue;
        if (!cand_match(&a, r->glob) && !(p2 != NULL && cand_match(&b, r->glob)))
            continue;
        if (r->window >= 0) {
            long long now = monotonic_ns();
            if (r->opened < 0)
                r->opened = now; /* the lock episode starts with the first matching call */
            if (now - r->opened >= r->window) {
                r->remaining = 0; /* over: the file was let go, for good */
                continue;
            }
        }
        if (r->remaining > 0)
            r->remaining--;
        err = r->err;
    }
    pthread_mutex_unlock(&rules_lock);

    if (err != 0) {
        char num[16];
        log_line("fault", point, op, errno_name(err, num, sizeof num), p1, p2);
    }
    errno = saved_errno;
    return err;
}

static int intercept(enum op op, int dirfd, const char *path)
{
    return intercept2(op, dirfd, path, AT_FDCWD, NULL);
}

static int wants_write(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT) != 0;
}

static int needs_mode(int flags)
{
    return (flags & O_CREAT) != 0 || (O_TMPFILE != 0 && (flags & O_TMPFILE) == O_TMPFILE);
}

/* Fail the call with err: the usual -1/errno convention. */
#define FAIL_IF(expr)                                                                          \
    do {                                                                                       \
        int err_ = (expr);                                                                     \
        if (err_ != 0) {                                                                       \
            errno = err_;                                                                      \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Interposed functions                                                                        */

int rename(const char *old, const char *new)
{
    RESOLVE(rename);
    FAIL_IF(intercept2(OP_RENAME, AT_FDCWD, old, AT_FDCWD, new));
    return real_rename(old, new);
}

int renameat(int olddirfd, const char *old, int newdirfd, const char *new)
{
    RESOLVE(renameat);
    FAIL_IF(intercept2(OP_RENAME, olddirfd, old, newdirfd, new));
    return real_renameat(olddirfd, old, newdirfd, new);
}

int renameat2(int olddirfd, const char *old, int newdirfd, const char *new, unsigned int flags)
{
    RESOLVE(renameat2);
    FAIL_IF(intercept2(OP_RENAME, olddirfd, old, newdirfd, new));
    MISSING(renameat2, -1);
    return real_renameat2(olddirfd, old, newdirfd, new, flags);
}

int unlink(const char *path)
{
    RESOLVE(unlink);
    FAIL_IF(intercept(OP_UNLINK, AT_FDCWD, path));
    return real_unlink(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    RESOLVE(unlinkat);
    FAIL_IF(intercept((flags & AT_REMOVEDIR) ? OP_RMDIR : OP_UNLINK, dirfd, path));
    return real_unlinkat(dirfd, path, flags);
}

int rmdir(const char *path)
{
    RESOLVE(rmdir);
    FAIL_IF(intercept(OP_RMDIR, AT_FDCWD, path));
    return real_rmdir(path);
}

int link(const char *old, const char *new)
{
    RESOLVE(link);
    FAIL_IF(intercept2(OP_LINK, AT_FDCWD, old, AT_FDCWD, new));
    return real_link(old, new);
}

int linkat(int olddirfd, const char *old, int newdirfd, const char *new, int flags)
{
    RESOLVE(linkat);
    FAIL_IF(intercept2(OP_LINK, olddirfd, old, newdirfd, new));
    return real_linkat(olddirfd, old, newdirfd, new, flags);
}

int symlink(const char *target, const char *linkpath)
{
    RESOLVE(symlink);
    FAIL_IF(intercept(OP_SYMLINK, AT_FDCWD, linkpath));
    return real_symlink(target, linkpath);
}

int symlinkat(const char *target, int newdirfd, const char *linkpath)
{
    RESOLVE(symlinkat);
    FAIL_IF(intercept(OP_SYMLINK, newdirfd, linkpath));
    return real_symlinkat(target, newdirfd, linkpath);
}

int mkdir(const char *path, mode_t mode)
{
    RESOLVE(mkdir);
    FAIL_IF(intercept(OP_MKDIR, AT_FDCWD, path));
    return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    RESOLVE(mkdirat);
    FAIL_IF(intercept(OP_MKDIR, dirfd, path));
    return real_mkdirat(dirfd, path, mode);
}

int chmod(const char *path, mode_t mode)
{
    RESOLVE(chmod);
    FAIL_IF(intercept(OP_CHMOD, AT_FDCWD, path));
    return real_chmod(path, mode);
}

int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    RESOLVE(fchmodat);
    FAIL_IF(intercept(OP_CHMOD, dirfd, path));
    return real_fchmodat(dirfd, path, mode, flags);
}

#define OPEN_BODY(name, dirfd, path, flags)                                                    \
    mode_t mode = 0;                                                                           \
    if (needs_mode(flags)) {                                                                   \
        va_list ap;                                                                            \
        va_start(ap, flags);                                                                   \
        mode = (mode_t)va_arg(ap, unsigned int);                                               \
        va_end(ap);                                                                            \
    }                                                                                          \
    RESOLVE(name);                                                                             \
    if (wants_write(flags))                                                                    \
        FAIL_IF(intercept(OP_OPEN, dirfd, path));

int open(const char *path, int flags, ...)
{
    OPEN_BODY(open, AT_FDCWD, path, flags)
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    OPEN_BODY(open64, AT_FDCWD, path, flags)
    return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    OPEN_BODY(openat, dirfd, path, flags)
    return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    OPEN_BODY(openat64, dirfd, path, flags)
    return real_openat64(dirfd, path, flags, mode);
}

/* _FORTIFY_SOURCE entry points: called for opens without a mode argument. */
int __open_2(const char *path, int flags)
{
    RESOLVE(__open_2);
    if (wants_write(flags))
        FAIL_IF(intercept(OP_OPEN, AT_FDCWD, path));
    MISSING(__open_2, -1);
    return real___open_2(path, flags);
}

int __open64_2(const char *path, int flags)
{
    RESOLVE(__open64_2);
    if (wants_write(flags))
        FAIL_IF(intercept(OP_OPEN, AT_FDCWD, path));
    MISSING(__open64_2, -1);
    return real___open64_2(path, flags);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    RESOLVE(__openat_2);
    if (wants_write(flags))
        FAIL_IF(intercept(OP_OPEN, dirfd, path));
    MISSING(__openat_2, -1);
    return real___openat_2(dirfd, path, flags);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
    RESOLVE(__openat64_2);
    if (wants_write(flags))
        FAIL_IF(intercept(OP_OPEN, dirfd, path));
    MISSING(__openat64_2, -1);
    return real___openat64_2(dirfd, path, flags);
}

int creat(const char *path, mode_t mode)
{
    RESOLVE(creat);
    FAIL_IF(intercept(OP_OPEN, AT_FDCWD, path));
    return real_creat(path, mode);
}

int creat64(const char *path, mode_t mode)
{
    RESOLVE(creat64);
    FAIL_IF(intercept(OP_OPEN, AT_FDCWD, path));
    MISSING(creat64, -1);
    return real_creat64(path, mode);
}

static int fopen_writes(const char *mode)
{
    return mode != NULL && strpbrk(mode, "wa+") != NULL;
}

FILE *fopen(const char *path, const char *mode)
{
    RESOLVE(fopen);
    if (fopen_writes(mode)) {
        int err = intercept(OP_OPEN, AT_FDCWD, path);
        if (err != 0) {
            errno = err;
            return NULL;
        }
    }
    return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    RESOLVE(fopen64);
    if (fopen_writes(mode)) {
        int err = intercept(OP_OPEN, AT_FDCWD, path);
        if (err != 0) {
            errno = err;
            return NULL;
        }
    }
    MISSING(fopen64, NULL);
    return real_fopen64(path, mode);
}

ssize_t write(int fd, const void *buf, size_t count)
{
    RESOLVE(write);
    ensure_init();
    if (write_active && !in_init) {
        struct stat st;
        int saved_errno = errno;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            char link[64], path[PATH_MAX + 1];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, path, PATH_MAX);
            path[n > 0 ? n : 0] = '\0';
            FAIL_IF(intercept(OP_WRITE, AT_FDCWD, path));
        }
        errno = saved_errno;
    }
    return real_write(fd, buf, count);
}
