#include "conv/coop_mma_emulated"
#include "linear/coop_body"
