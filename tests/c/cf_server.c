/* cf_server PORTFILE CONNS create|signature: a CoreFoundation server on its run loop. A
 * listening CFSocket (CFSocketCreate + CFSocketSetAddress, or
 * CFSocketCreateWithSocketSignature) on 127.0.0.1 port 0 with an accept callback; each accepted
 * connection is wrapped with CFSocketCreateWithNative and a data callback that answers every
 * chunk with the same bytes (CFSocketSendData) and invalidates the socket at the client's EOF.
 * Writes its port to PORTFILE; ends after CONNS connections and prints what it handled. */
#include <CoreFoundation/CFBase.h>
#include <CoreFoundation/CFData.h>
#include <CoreFoundation/CFRunLoop.h>
#include <CoreFoundation/CFSocket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int conns_wanted, conns_done;
static long echoed, send_fail;

static void on_data(CFSocketRef s, CFSocketCallBackType type, CFDataRef addr, const void *data, void *info) {
    (void)addr;
    (void)info;
    if (type != kCFSocketDataCallBack)
        return;
    CFDataRef d = (CFDataRef)data;
    if (CFDataGetLength(d) == 0) {
        CFSocketInvalidate(s);
        CFRelease(s);
        if (++conns_done == conns_wanted)
            CFRunLoopStop(CFRunLoopGetCurrent());
        return;
    }
    if (CFSocketSendData(s, NULL, d, 10.0) == kCFSocketSuccess)
        echoed += CFDataGetLength(d);
    else
        send_fail++;
}

static void on_accept(CFSocketRef ls, CFSocketCallBackType type, CFDataRef addr, const void *data, void *info) {
    (void)ls;
    (void)addr;
    (void)info;
    if (type != kCFSocketAcceptCallBack)
        return;
    CFSocketNativeHandle fd = *(const CFSocketNativeHandle *)data;
    CFSocketRef s = CFSocketCreateWithNative(kCFAllocatorDefault, fd, kCFSocketDataCallBack, on_data, NULL);
    CFRunLoopSourceRef src = CFSocketCreateRunLoopSource(kCFAllocatorDefault, s, 0);
    CFRunLoopAddSource(CFRunLoopGetCurrent(), src, kCFRunLoopDefaultMode);
    CFRelease(src);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: cf_server PORTFILE CONNS create|signature\n");
        return 2;
    }
    alarm(90);
    conns_wanted = atoi(argv[2]);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CFDataRef addr = CFDataCreate(kCFAllocatorDefault, (const UInt8 *)&sin, sizeof sin);
    CFSocketRef ls;
    int set_error = 0;
    if (strcmp(argv[3], "signature") == 0) {
        CFSocketSignature sig = {PF_INET, SOCK_STREAM, IPPROTO_TCP, addr};
        ls = CFSocketCreateWithSocketSignature(kCFAllocatorDefault, &sig, kCFSocketAcceptCallBack, on_accept, NULL);
    } else {
        ls = CFSocketCreate(kCFAllocatorDefault, PF_INET, SOCK_STREAM, IPPROTO_TCP, kCFSocketAcceptCallBack,
                            on_accept, NULL);
        set_error = ls ? (int)CFSocketSetAddress(ls, addr) : -1;
    }
    CFRelease(addr);
    if (!ls || set_error != 0) {
        fprintf(stderr, "cf_server: no listening socket (%d)\n", set_error);
        return 2;
    }
    CFDataRef bound = CFSocketCopyAddress(ls);
    memcpy(&sin, CFDataGetBytePtr(bound), sizeof sin);
    CFRelease(bound);
    FILE *pf = fopen(argv[1], "w");
    if (!pf)
        return 2;
    fprintf(pf, "%d\n", ntohs(sin.sin_port));
    fclose(pf);
    CFRunLoopSourceRef src = CFSocketCreateRunLoopSource(kCFAllocatorDefault, ls, 0);
    CFRunLoopAddSource(CFRunLoopGetCurrent(), src, kCFRunLoopDefaultMode);
    for (int i = 0; i < 600 && conns_done < conns_wanted; i++)
        CFRunLoopRunInMode(kCFRunLoopDefaultMode, 0.1, false);
    CFSocketInvalidate(ls);
    printf("set %d conns %d echoed %ld send_fail %ld\n", set_error, conns_done, echoed, send_fail);
    return conns_done == conns_wanted ? 0 : 1;
}
