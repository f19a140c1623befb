#include "mma/emulated"
#include "conv/backward_weight/coop_body"
