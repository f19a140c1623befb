#include "mma/coop"
#include "conv/backward_weight/coop_body"
