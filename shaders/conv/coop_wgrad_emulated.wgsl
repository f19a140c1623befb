#include "conv/coop_mma_emulated"
#include "conv/coop_wgrad_body"
