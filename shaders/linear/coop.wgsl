#include "conv/coop_mma"
#include "linear/coop_body"
