import AgentGatePolicy
import CSupport
import Glibc

/// socket(): decided on the kind of socket the kernel will create.
enum SocketCreationHandler {
    /// socket(): decided on the socket the kernel will create. Packet sockets (AF_PACKET, and
    /// SOCK_PACKET, which the kernel turns into one whatever the family) and raw sockets write
    /// their own headers, so where they send is not what a connect or sendto names. Netlink is
    /// decided on its protocol: queries and notifications pass, subsystems that redirect or
    /// rewrite traffic (netfilter, xfrm) are the `netlink` route.
    static func socket(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        let family = n.arg(0) & 0xffff_ffff
        let type = n.arg(1) & 0xf
        let protocolNumber = n.arg(2) & 0xffff_ffff
        if family == addressFamilyNetlink {
            // SOCK_RAW and SOCK_DGRAM mean the same for netlink; the kernel refuses other types.
            // NETLINK_ROUTE 0, SOCK_DIAG 4, AUDIT 9, FIB_LOOKUP 10, KOBJECT_UEVENT 15, GENERIC 16.
            let open: Set<UInt64> = [0, 4, 9, 10, 15, 16]
            guard open.contains(protocolNumber) || call.policy.allowedUnsupervised.contains(.netAdmin) else {
                UnsupervisedRouteHandlers.unsupervised(call, route: .netAdmin, errno: EPROTONOSUPPORT,
                                                       target: "socket(AF_NETLINK, protocol \(protocolNumber))")
                return
            }
            if call.policy.allowedUnsupervised.contains(.netAdmin) || !core.holdsNetworkAdminCapabilities {
                core.listener.continueSyscall(n.id) // no capability to withhold
                return
            }
            // Queries need these families, but with CAP_NET_ADMIN a request on them can add
            // routes, links and tunnels, or reconfigure audit. Netlink checks the capabilities of
            // whoever created the socket too: create it here without them, and hand it over.
            let withheld = SupervisorCore.networkAdminCapabilities
            let fd = withheld.withUnsafeBufferPointer {
                agentgate_socket_without_capabilities(Int32(family), Int32(truncatingIfNeeded: n.arg(1)), Int32(protocolNumber),
                                                      $0.baseAddress, Int32($0.count))
            }
            guard fd >= 0 else { core.listener.fail(n.id, errno: -fd); return }
            defer { agentgate_close(fd) }
            let cloexec = n.arg(1) & UInt64(0o2000000) != 0 // SOCK_CLOEXEC
            let installed = core.listener.inject(n.id, fd: fd, cloexec: cloexec, send: true)
            if installed < 0 && installed != -ENOENT { core.listener.fail(n.id, errno: -installed) }
            return
        }
        let kind: String
        switch (family, type) {
        case (_, socketTypePacket): kind = "socket(SOCK_PACKET)"
        case (17, _): kind = "socket(AF_PACKET)"
        case (_, 3): kind = "socket(\(familyName(family)), SOCK_RAW)"
        default: kind = "socket(\(familyName(family)))"
        }
        UnsupervisedRouteHandlers.unsupervised(call, route: .rawSockets, errno: EPERM, target: kind)
    }

    private static func familyName(_ family: UInt64) -> String {
        switch family {
        case 2: return "AF_INET"
        case 10: return "AF_INET6"
        case 16: return "AF_NETLINK"
        case 17: return "AF_PACKET"
        default: return "family \(family)"
        }
    }
}
