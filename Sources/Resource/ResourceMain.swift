import Console
import Foundation

/// The shared body of the `check`, `in` and `out` commands (of the `slipway` executable,
/// by whichever name it is called): stdin in, the command's JSON to stdout, any failure as
/// one line on stderr and exit status 1.
public enum ResourceMain {
    public static func run(_ name: String, _ body: (Data) throws -> Data) -> Never {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        do {
            let output = try body(input)
            FileHandle.standardOutput.write(output + Data("\n".utf8))
            exit(0)
        } catch {
            // Any line break counts, "\r\n" (one Character) and U+2028 included.
            let line = "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "failed"
            FileHandle.standardError.write(Data("\(name): \(line)\n".utf8))
            exit(1)
        }
    }
}
