#include "mma/emulated"
#include "conv/forward/coop_body"
