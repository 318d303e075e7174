#include "decoder/classify.h"

namespace vmm86 {

// Placeholder until the table lands: everything is plain.
InsnClassSet classify(const ZydisDecodedInstruction&) { return InsnClassSet{}.add(InsnClass::Plain); }

}  // namespace vmm86
