/*
 * The guest init's protocol with the host: what the builder writes for it and what it prints.
 *
 * One file for both sides: engitor/guest/init.c includes it, and engitor/protocol.py reads
 * its #defines (a test checks that every status word init.c prints and every configuration
 * key it reads is declared here).
 *
 * Configuration: the builder writes ENGITOR_CONFIG_PATH into the initramfs, one "key value"
 * per line, values with "\\" and "\n" escaped; keys may repeat (arg, env, module).
 *
 * Status lines start at a fresh line with ENGITOR_MARKER so the host finds them among the
 * program's own output:
 *   @@engitor:start pid=N uptime=S        the program was started (S: seconds since boot)
 *   @@engitor:exit code=N                 it exited normally
 *   @@engitor:exit signal=N name=SIGXXX   it was killed by a signal
 *   @@engitor:error MESSAGE               init could not do its job
 *   @@engitor:warning MESSAGE             something failed that the program may not need
 *   @@engitor:stopping                    a shutdown request arrived; SIGTERM was sent
 *   @@engitor:probe ok uptime=S           the accelerator probe's guest came up
 *   @@engitor:hold                        waiting on the hold port (a snapshot start)
 *
 * virtio-serial ports, by name: the report channel (the guest writes "listen ..." lines) and,
 * when the kernel command line has ENGITOR_HOLD_ARG, the hold port. There, before it mounts
 * volumes and starts the program, the init writes "hold\n" and waits for
 *   go SECONDS NANOSECONDS SEED           the host's wall clock and 32 bytes of entropy, in hex
 * then sets its clock, reseeds the kernel's RNG and answers "resumed\n". The host saves the VM
 * at that point; a VM restored from the save is waiting for the same line (vm/snapshot.py).
 */
#ifndef ENGITOR_INIT_H
#define ENGITOR_INIT_H

#define ENGITOR_CONFIG_PATH "/.engitor/init"
#define ENGITOR_MARKER "@@engitor:"

/* Status words, after the marker. */
#define ENGITOR_STATUS_START "start"
#define ENGITOR_STATUS_EXIT "exit"
#define ENGITOR_STATUS_ERROR "error"
#define ENGITOR_STATUS_WARNING "warning"
#define ENGITOR_STATUS_STOPPING "stopping"
#define ENGITOR_STATUS_PROBE "probe ok"
#define ENGITOR_STATUS_DHCP "dhcp"
#define ENGITOR_STATUS_DAEMON "daemon"
#define ENGITOR_STATUS_HOLD "hold"

/* virtio-serial port names, and the kernel argument that asks the init to hold. */
#define ENGITOR_REPORT_PORT "org.engitor.0"
#define ENGITOR_HOLD_PORT "org.engitor.hold"
#define ENGITOR_HOLD_ARG "engitor.hold"

/* Configuration keys. */
#define ENGITOR_KEY_ARG "arg"
#define ENGITOR_KEY_ENV "env"
#define ENGITOR_KEY_CWD "cwd"
#define ENGITOR_KEY_HOSTNAME "hostname"
#define ENGITOR_KEY_MODULE "module"
#define ENGITOR_KEY_ADDR "addr"
#define ENGITOR_KEY_GATEWAY "gateway"
#define ENGITOR_KEY_STOP_TIMEOUT "stop_timeout"
#define ENGITOR_KEY_PROBE "probe"
/* static or dhcp; and, in exported images, a device pattern and the module it needs */
#define ENGITOR_KEY_NETWORK "network"
#define ENGITOR_KEY_MODALIAS "modalias"

#endif
