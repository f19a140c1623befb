#include "conv/coop_mma"
#include "conv/coop_body"
