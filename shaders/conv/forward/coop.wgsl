#include "mma/coop"
#include "conv/forward/coop_body"
