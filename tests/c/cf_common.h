/* A CFSocket client on a CFRunLoop, shared by cf_client.c (a host) and cf_plugin.c (a plugin
 * a host dlopens): the way a CoreFoundation program talks over a socket. It connects with
 * CFSocketCreate + CFSocketConnectToAddress ("create") or with
 * CFSocketCreateConnectedToSocketSignature ("signature"), schedules the socket on the run loop
 * with a data callback (CoreFoundation reads on its own thread and hands the bytes to the
 * callback on this one), and sends `msgs` messages of `size` bytes with CFSocketSendData, each
 * after the echo of the one before has come back in full. Every result CoreFoundation returns
 * is checked; the caller prints them, so a run with and without sockmeter can be compared.
 *
 * Build: cc -D__LITTLE_ENDIAN__=1 -I<cf>/include ... -L<cf>/lib -lCoreFoundation (gcc needs the
 * macro: CoreFoundation's TargetConditionals.h expects clang's). */
#ifndef SOCKMETER_TEST_CF_COMMON_H
#define SOCKMETER_TEST_CF_COMMON_H

#include <CoreFoundation/CFBase.h>
#include <CoreFoundation/CFData.h>
#include <CoreFoundation/CFRunLoop.h>
#include <CoreFoundation/CFSocket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct cf_exchange {
    /* Asked for. */
    int port, msgs, size;
    /* What happened. */
    long sent_ok;      /* CFSocketSendData calls that returned kCFSocketSuccess */
    long received;     /* bytes the data callback was handed */
    long callbacks;    /* data callbacks with bytes */
    int connect_error; /* CFSocketConnectToAddress's result (0: kCFSocketSuccess) */
    int valid_after;   /* CFSocketIsValid after the exchange, before invalidating */
    int peer_port;     /* from CFSocketCopyPeerAddress */
    int eof;           /* the peer closed */
};

static void cf_send_next(CFSocketRef s, struct cf_exchange *x, int index) {
    UInt8 buf[65536];
    int n = x->size < (int)sizeof buf ? x->size : (int)sizeof buf;
    memset(buf, 'a' + index % 26, (size_t)n);
    CFDataRef d = CFDataCreate(kCFAllocatorDefault, buf, n);
    if (CFSocketSendData(s, NULL, d, 10.0) == kCFSocketSuccess)
        x->sent_ok++;
    CFRelease(d);
}

static void cf_on_data(CFSocketRef s, CFSocketCallBackType type, CFDataRef addr, const void *data, void *info) {
    (void)addr;
    struct cf_exchange *x = info;
    if (type != kCFSocketDataCallBack)
        return;
    CFIndex n = CFDataGetLength((CFDataRef)data);
    if (n == 0) {
        x->eof = 1;
        CFRunLoopStop(CFRunLoopGetCurrent());
        return;
    }
    x->received += n;
    x->callbacks++;
    long want = (long)x->size * x->msgs;
    if (x->received >= want) {
        CFRunLoopStop(CFRunLoopGetCurrent());
        return;
    }
    /* The next message once the echo of the last one is complete. */
    if (x->received % x->size == 0)
        cf_send_next(s, x, (int)(x->received / x->size));
}

static CFDataRef cf_loopback(int port) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return CFDataCreate(kCFAllocatorDefault, (const UInt8 *)&sin, sizeof sin);
}

/* Runs the exchange; returns 0 when every step worked. */
static int cf_exchange_run(struct cf_exchange *x, const char *how) {
    CFSocketContext ctx = {0, x, NULL, NULL, NULL};
    CFDataRef to = cf_loopback(x->port);
    CFSocketRef s;
    if (strcmp(how, "signature") == 0) {
        CFSocketSignature sig = {PF_INET, SOCK_STREAM, IPPROTO_TCP, to};
        s = CFSocketCreateConnectedToSocketSignature(kCFAllocatorDefault, &sig, kCFSocketDataCallBack, cf_on_data,
                                                     &ctx, 10.0);
        x->connect_error = s ? 0 : -1;
    } else {
        s = CFSocketCreate(kCFAllocatorDefault, PF_INET, SOCK_STREAM, IPPROTO_TCP, kCFSocketDataCallBack, cf_on_data,
                           &ctx);
        x->connect_error = s ? (int)CFSocketConnectToAddress(s, to, 10.0) : -1;
    }
    CFRelease(to);
    if (!s || x->connect_error != 0)
        return 1;
    CFDataRef peer = CFSocketCopyPeerAddress(s);
    if (peer && CFDataGetLength(peer) >= (CFIndex)sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, CFDataGetBytePtr(peer), sizeof sin);
        x->peer_port = ntohs(sin.sin_port);
    }
    if (peer)
        CFRelease(peer);
    CFRunLoopSourceRef src = CFSocketCreateRunLoopSource(kCFAllocatorDefault, s, 0);
    CFRunLoopAddSource(CFRunLoopGetCurrent(), src, kCFRunLoopDefaultMode);
    cf_send_next(s, x, 0);
    long want = (long)x->size * x->msgs;
    for (int i = 0; i < 300 && x->received < want && !x->eof; i++)
        CFRunLoopRunInMode(kCFRunLoopDefaultMode, 0.1, false);
    x->valid_after = CFSocketIsValid(s);
    CFRunLoopRemoveSource(CFRunLoopGetCurrent(), src, kCFRunLoopDefaultMode);
    CFRelease(src);
    CFSocketInvalidate(s);
    CFRelease(s);
    return x->received == want ? 0 : 1;
}

static void cf_exchange_print(const struct cf_exchange *x, FILE *out) {
    fprintf(out, "connect %d peer_port_ok %d sent_ok %ld received %ld valid %d\n", x->connect_error,
            x->peer_port == x->port, x->sent_ok, x->received, x->valid_after);
}

#endif
