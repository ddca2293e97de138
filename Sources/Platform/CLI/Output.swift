import Foundation
import Store

/// Prints JSON from the daemon as it came.
func printRaw(_ data: Data) {
    writeStandardOutput(data)
    if data.last != UInt8(ascii: "\n") { print() }
}

/// Writes bytes to standard output. When the reader has gone (`outpost ... | head -1`), the
/// command ends the way Unix tools do, by SIGPIPE, instead of crashing on the failed write.
func writeStandardOutput(_ data: Data) {
    do {
        try FileHandle.standardOutput.write(contentsOf: data)
    } catch {
        signal(SIGPIPE, SIG_DFL)
        raise(SIGPIPE)
        exit(1)
    }
}

/// Prints rows under a header, columns padded to their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "   "))
    }
}

/// Prints `Label:  value` lines, labels aligned.
func printFields(_ fields: [(String, String)]) {
    let width = (fields.map { $0.0.count }.max() ?? 0) + 1
    for (label, value) in fields {
        print((label + ":").padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
    }
}

/// Prints a service in the chosen format.
func printService(_ data: Data, format: OutputFormat) throws {
    if format == .json { return printRaw(data) }
    let service = try APIJSON.decoder().decode(ServiceDTO.self, from: data)
    let spec = service.spec.template.spec
    var fields: [(String, String)] = [
        ("Name", service.metadata.name ?? ""),
        ("Namespace", service.metadata.namespace ?? ""),
        ("URL", service.status?.url ?? ""),
        ("Command", ([spec.command ?? ""] + (spec.args ?? [])).joined(separator: " ")),
        ("Latest created", service.status?.latestCreatedRevisionName ?? ""),
        ("Latest ready", service.status?.latestReadyRevisionName ?? ""),
        ("Traffic", (service.status?.traffic ?? []).map { target in
            "\(target.percent ?? 0)% -> \(target.revisionName ?? "")" + (target.tag.map { " (tag \($0))" } ?? "")
        }.joined(separator: ", ")),
        ("Generation", String(service.metadata.generation ?? 0)),
    ]
    fields += (service.status?.conditions ?? []).map { condition in
        (condition.type, [condition.status, condition.reason, condition.message].compactMap { $0 }.joined(separator: "  "))
    }
    printFields(fields)
}
