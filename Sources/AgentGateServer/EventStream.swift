import AgentGateReports
import AgentGateStore
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// `GET /api/v1/events/stream`: new events as server-sent events. The database is polled every
/// 250 ms for rows after the cursor (never anything a supervisor waits on). Each client holds
/// at most one page in flight: a write that the client doesn't take within `stallLimit` closes
/// the connection, so a slow client costs one page of memory, then nothing.
enum EventStream {
    static let pollInterval: Duration = .milliseconds(250)
    static let keepAliveInterval: Duration = .seconds(15)
    static let pageSize = 200
    static let stallLimit: Duration = .seconds(10)
    static let maximumStreams = 64

    /// Streams open now (each holds a task and a connection).
    static let open = Atomic<Int>(0)

    static func response(reads: AuditReads, filter: EventFilter, after: Int64?, channel: any Channel) throws(APIError) -> Response {
        guard open.add(1, ordering: .relaxed).newValue <= maximumStreams else {
            open.subtract(1, ordering: .relaxed)
            throw APIError(.tooManyStreams, "too many event streams are open (at most \(maximumStreams))")
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-store"
        let body = ResponseBody { writer in
            defer { open.subtract(1, ordering: .relaxed) }
            let watchdog = StallWatchdog(channel: channel)
            let watching = Task { await watchdog.run() }
            defer { watching.cancel() }
            var cursor = after
            var lastWrite = ContinuousClock.now
            try await watchdog.guarding { try await writer.write(ByteBuffer(string: ": agentgate event stream\n\n")) }
            while !Task.isCancelled {
                let (events, next) = (try? page(reads: reads, filter: filter, after: cursor)) ?? ([], cursor)
                cursor = next
                if !events.isEmpty {
                    var buffer = ByteBuffer()
                    for (id, json) in events { buffer.writeString("id: \(id)\nevent: decision\ndata: \(json)\n\n") }
                    try await watchdog.guarding { try await writer.write(buffer) }
                    lastWrite = .now
                } else if ContinuousClock.now - lastWrite >= keepAliveInterval {
                    try await watchdog.guarding { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
                    lastWrite = .now
                }
                if events.count < pageSize { try await Task.sleep(for: pollInterval) }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The events after `after` (nil: after the newest stored one, so the stream shows what
    /// happens from now on), as (id, JSON) pairs, and the new cursor.
    static func page(reads: AuditReads, filter: EventFilter, after: Int64?) throws(APIError) -> ([(Int64, String)], Int64?) {
        let result: ([(Int64, String)], Int64?)? = try reads.withStore { store in
            guard let after else { return ([], try store.latestEventID()) }
            var query = filter.query
            query.afterID = after
            query.limit = pageSize
            let events = try store.events(matching: query)
            let shown = events.filter(filter.shows).map { ($0.id, AuditFormat.json(AuditFormat.jsonObject($0))) }
            return (shown, events.last?.id ?? after)
        }
        // No database yet: every event written to it is new.
        return result ?? ([], after ?? 0)
    }
}

/// Closes a connection whose pending write has not completed within `EventStream.stallLimit`.
final class StallWatchdog: Sendable {
    private let channel: any Channel
    /// When the pending write started; nil when none is pending.
    private let writeStarted = Mutex<ContinuousClock.Instant?>(nil)

    init(channel: any Channel) { self.channel = channel }

    func guarding(_ write: () async throws -> Void) async throws {
        writeStarted.withLock { $0 = .now }
        defer { writeStarted.withLock { $0 = nil } }
        try await write()
    }

    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            let stalled = writeStarted.withLock { started in started.map { ContinuousClock.now - $0 >= EventStream.stallLimit } ?? false }
            if stalled {
                channel.close(promise: nil)
                return
            }
        }
    }
}
