// Tests never touch the network and never read the user's cache.
process.env.SCENIMEFY_OFFLINE = process.env.SCENIMEFY_OFFLINE ?? '1';
