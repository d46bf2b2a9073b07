/* pjproject compile-time settings for doorstation's pjsua2 build (scripts/build-pjsua2). */
#ifndef DOORSTATION_PJ_CONFIG_SITE_H
#define DOORSTATION_PJ_CONFIG_SITE_H

/* The reason for building pjsua2 ourselves: the pjsua2-python wheel leaves IPv6 out (pjlib's
 * default), so IPv6 accounts abort and RTP is always IPv4 (docs/sip.md "pjsua2 build"). */
#define PJ_HAS_IPV6 1

/* The station's own address comes from the interface of the default route, not from resolving the
 * host name: that asks DNS for an IPv6 address, and a door station on a LAN without a working DNS
 * server would wait out the resolver's timeouts each time it opens a SIP listener. */
#define PJ_GETHOSTIP_DISABLE_LOCAL_RESOLUTION 1

/* Sockets pjlib's select() I/O queue can hold (pjlib's default: 64). Each call takes two (RTP,
 * RTCP) and a closed one stays reserved for PJ_IOQUEUE_KEY_FREE_DELAY (500 ms), so the queue
 * sustains about PJ_IOQUEUE_MAX_HANDLES new calls per second: with 64, a peer answering and hanging
 * up calls quickly (or an outgoing burst) filled it within half a second. When it is full a new
 * call fails (the NDEBUG build logs pjlib's assertion instead of aborting; scripts/build-pjsua2,
 * tests/test_call_flood.py). 512 stays well below select()'s FD_SETSIZE (1024) with the
 * supervisor's own descriptors. */
#define PJ_IOQUEUE_MAX_HANDLES 512

/* Calls pjsua can hold at once (pjsua's default: 4). The station itself takes at most 4 calls
 * (EngineConfig.max_calls), but pjsua keeps a call's slot until its transactions end: an INVITE
 * whose Via points nowhere, answered and then dropped by the engine for want of an ACK, holds its
 * slot for about a minute (ACK and BYE timeouts). With 4 slots, four such INVITEs kept every real
 * caller out (486 from pjsua itself, tests/test_invite_storm.py). */
#define PJSUA_MAX_CALLS 32

/* Audio only: audio goes through our own ALSA bridge, so no sound device and no video. */
#define PJMEDIA_HAS_VIDEO 0
#define PJSUA_HAS_VIDEO 0

#endif
