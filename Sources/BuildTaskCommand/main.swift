// The `build-task` executable. Executables are wiring only: decode input, call the library,
// encode the answer, map errors to an exit code. The library behind `build-task` is not
// built yet (see README, "Status"), so this build says so instead of pretending.
import Foundation

FileHandle.standardError.write(Data("build-task: not available in this build of Slipway yet (see the README's Status section)\n".utf8))
exit(2)
