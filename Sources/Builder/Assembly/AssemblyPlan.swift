import BuildContext
import Errors
import Foundation
import OCI
import Spawn

/// `BUILDER`: who produces the image.
public enum BuilderSetting: String, Sendable, Equatable, CaseIterable {
    /// Assemble when every stage the target needs executes nothing, else buildah.
    case auto
    /// Always assemble; a Dockerfile that cannot be assembled is an error.
    case assemble
    /// Always buildah.
    case buildah
}

/// Why a Dockerfile cannot be assembled without executing anything, in one line naming the
/// instruction and its line: what `BUILDER=assemble` says, and what `auto` logs before it
/// falls back to buildah.
public struct AssemblyRefusal: SlipwayError, Equatable {
    /// What kind of failure this is (one kind: the message says the rest).
    public typealias Kind = ErrorKind<AssemblyRefusal>
    public var kind: Kind { .notAssemblable }
    /// What failed, with which value, and what to do.
    public let message: String
    public init(_ message: String) { self.message = message }
    init(line: Int, _ what: String) { self.init("Dockerfile line \(line): \(what)") }
}

/// The stages a build assembles and what each instruction does, decided from the Dockerfile
/// alone (no I/O), so that the choice between the assembler and buildah is unit-tested.
///
/// Only instructions whose effect the assembler reproduces exactly as buildah writes an OCI
/// image are accepted; anything else is refused rather than approximated:
/// - `RUN` executes a program (it needs buildah, and `privileged: true` in Concourse);
/// - `ONBUILD`, `ADD` of a URL or a git repository, `COPY --from` an image that is not an
///   earlier stage, `--link`, `--parents`, `--exclude`, `--checksum`, `--keep-git-dir`,
///   `--network`, heredocs, a `# escape=` or `# syntax=` directive, and `EXPOSE` ranges.
/// `SHELL` and `HEALTHCHECK` are accepted and recorded nowhere: buildah drops both from an OCI
/// image ("not supported for OCI image format"), and `SHELL` otherwise only changes `RUN`.
struct AssemblyPlan: Sendable {
    /// What one instruction does, its words still unsubstituted.
    enum Step: Sendable, Equatable {
        case copy(Copy)
        case env(String)
        case label(String)
        case workdir(String)
        case user(String)
        case expose(String)
        case entrypoint(Command)
        case cmd(Command)
        case arg(String)
        case stopSignal(String)
        case volume(String)
        /// Accepted, with no effect on an OCI image (`SHELL`, `HEALTHCHECK`).
        case ignored
    }

    /// `CMD`/`ENTRYPOINT`: the exec form as given, or the shell form's text (run by `/bin/sh -c`).
    enum Command: Sendable, Equatable {
        case exec([String])
        case shell(String)

        var arguments: [String] {
            switch self {
            case .exec(let words): words
            case .shell(let text): ["/bin/sh", "-c", text]
            }
        }
    }

    struct Copy: Sendable, Equatable {
        /// `ADD` (a local file that is an archive is refused when it is read).
        var isAdd: Bool
        /// The earlier stage's index, for `COPY --from`.
        var fromStage: Int?
        var sources: [String]
        var destination: String
        var chown: String?
        var chmod: UInt32?
        /// The instruction as written, for history and messages.
        var written: String
        var line: Int
    }

    struct Stage: Sendable {
        /// Its index in the Dockerfile.
        var index: Int
        var source: DockerfileStages.Stage
        /// The earlier stage it is built on, else nil (an image or scratch).
        var baseStage: Int?
        var steps: [(instruction: DockerfileStages.Instruction, step: Step)]
    }

    /// The stages to assemble, in Dockerfile order: the target and the stages it needs.
    var stages: [Stage]
    /// The index of the target stage in ``stages``.
    var target: Int { stages.count - 1 }

    /// The Dockerfile indexes of the stages the image is built on: the target and its bases.
    /// Only these end up in the image; a stage that is only copied from is needed as a tree,
    /// so its layers are never written.
    var imageStages: Set<Int> {
        var imageStages: Set<Int> = []
        var next: Int? = stages[target].index
        while let index = next, imageStages.insert(index).inserted {
            next = stages.first { $0.index == index }?.baseStage
        }
        return imageStages
    }

    /// The plan for `stages` (the Dockerfile up to the target, as ``BaseResolution`` keeps
    /// them), or the first instruction it cannot assemble.
    init(_ all: [DockerfileStages.Stage], directives: [String: String] = [:]) throws(AssemblyRefusal) {
        if let name = directives.keys.sorted().first(where: { $0 == "escape" || $0 == "syntax" }) {
            throw AssemblyRefusal("the Dockerfile's # \(name)= directive is not supported by the assembler")
        }
        guard !all.isEmpty else { throw AssemblyRefusal("the Dockerfile has no stage") }
        func stageIndex(_ name: String, before index: Int) -> Int? {
            let lowered = name.lowercased()
            if let named = all[..<index].lastIndex(where: { $0.name == lowered }) { return named }
            if let number = Int(name), number >= 0, number < index { return number }
            return nil
        }
        var planned: [Int: Stage] = [:]
        var needed: [Int] = [all.count - 1]
        while let index = needed.popLast() {
            guard planned[index] == nil else { continue }
            let source = all[index]
            var stage = Stage(
                index: index, source: source, baseStage: stageIndex(source.base, before: index), steps: [])
            if let base = stage.baseStage { needed.append(base) }
            for instruction in source.instructions {
                let step = try Self.step(instruction) { name throws(AssemblyRefusal) in
                    guard let earlier = stageIndex(name, before: index) else {
                        throw AssemblyRefusal(
                            line: instruction.line,
                            "COPY --from=\(name) names no earlier stage; copying from another image is not supported by the assembler (name it in a FROM … AS stage)"
                        )
                    }
                    return earlier
                }
                if case .copy(let copy) = step, let from = copy.fromStage { needed.append(from) }
                stage.steps.append((instruction, step))
            }
            planned[index] = stage
        }
        stages = planned.keys.sorted().map { planned[$0]! }
    }

    /// One instruction's step, or why it cannot be assembled.
    static func step(
        _ instruction: DockerfileStages.Instruction,
        stage: (String) throws(AssemblyRefusal) -> Int
    ) throws(AssemblyRefusal) -> Step {
        let line = instruction.line
        let arguments = instruction.arguments
        switch instruction.keyword {
        case "RUN":
            throw AssemblyRefusal(line: line, "RUN executes a program")
        case "COPY", "ADD":
            return .copy(try copy(instruction, stage: stage))
        case "ENV": return .env(arguments)
        case "LABEL": return .label(arguments)
        case "WORKDIR": return .workdir(arguments)
        case "USER": return .user(arguments)
        case "EXPOSE":
            if arguments.contains("-") {
                throw AssemblyRefusal(line: line, "EXPOSE of a port range is not supported by the assembler")
            }
            return .expose(arguments)
        case "ENTRYPOINT", "CMD":
            let command: Command =
                DockerfileStages.Instruction.execForm(arguments).map { .exec($0) } ?? .shell(arguments)
            return instruction.keyword == "CMD" ? .cmd(command) : .entrypoint(command)
        case "ARG": return .arg(arguments)
        case "STOPSIGNAL": return .stopSignal(arguments)
        case "VOLUME": return .volume(arguments)
        case "SHELL", "HEALTHCHECK": return .ignored
        case "ONBUILD":
            throw AssemblyRefusal(line: line, "ONBUILD is not supported by the assembler")
        default:
            throw AssemblyRefusal(line: line, "\(instruction.keyword) is not supported by the assembler")
        }
    }

    static func copy(
        _ instruction: DockerfileStages.Instruction,
        stage: (String) throws(AssemblyRefusal) -> Int
    ) throws(AssemblyRefusal) -> Copy {
        let line = instruction.line
        let keyword = instruction.keyword
        if instruction.hasHeredoc {
            throw AssemblyRefusal(line: line, "\(keyword) with a heredoc is not supported by the assembler")
        }
        let (flags, rest) = instruction.flagsAndRest
        var copy = Copy(
            isAdd: keyword == "ADD", sources: [], destination: "", written: "\(keyword) \(instruction.arguments)",
            line: line)
        for (name, value) in flags {
            switch name {
            case "from" where !value.isEmpty:
                if value.contains("$") {
                    throw AssemblyRefusal(
                        line: line, "\(keyword) --from=\(value) with a variable is not supported by the assembler")
                }
                copy.fromStage = try stage(value)
            case "chown" where !value.isEmpty:
                copy.chown = value
            case "chmod":
                guard let mode = UInt32(value, radix: 8), mode <= 0o7777, value.allSatisfy(\.isNumber) else {
                    throw AssemblyRefusal(
                        line: line,
                        "\(keyword) --chmod=\(value) is not an octal mode; the assembler supports only those")
                }
                copy.chmod = mode
            default:
                throw AssemblyRefusal(line: line, "\(keyword) --\(name) is not supported by the assembler")
            }
        }
        var words =
            DockerfileStages.Instruction.execForm(rest) ?? rest.split(whereSeparator: \.isWhitespace).map(String.init)
        guard words.count >= 2, let destination = words.popLast() else {
            throw AssemblyRefusal(line: line, "\(keyword) needs a source and a destination")
        }
        if copy.isAdd, let remote = words.first(where: { $0.contains("://") || $0.hasPrefix("git@") }) {
            throw AssemblyRefusal(
                line: line, "ADD \(remote) fetches from the network; the assembler adds only local files")
        }
        copy.sources = words
        copy.destination = destination
        return copy
    }
}

extension ErrorKind where Owner == AssemblyRefusal {
    /// The Dockerfile needs something the assembler does not reproduce.
    public static var notAssemblable: Self { Self("not assemblable") }
}
